"""The whole-sample time limit: correct but slow HumanEval+ samples, focalpo with and without it, and evalplus.

    python bench/sample_budget.py [--tasks HumanEval/0,HumanEval/2,HumanEval/3] [--mib 256] [--workers 2]
                                  [--evalplus-python bench/.venv-evalplus/bin/python]

Each sample is a task's canonical solution that first touches `--mib` MiB per call
(`b'x' * (mib << 20)`): correct, and within every per-test limit, but slow over a task's ~1,000 plus
inputs. evalplus 0.3.1 kills such a sample's process after min(60 s, sum of its per-test limits) +
2 s and reports `timeout`; `focalpo eval` does the same by default (`--sample-time-cap`), and
passes them only with the limit off (`--sample-time-cap 0`, focalpo's behaviour before the limit).
Prints each run's wall time and plus verdicts; with `--evalplus-python` the baseline (evalplus's
`check_correctness` per sample, as its CLI) runs in the same session on the same samples, its
ground truth cached first, untimed. Data is read from
../shared/data; outputs go to bench/out/sample_budget/.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "HumanEvalPlus-v0.1.10.jsonl.gz"
OUT = ROOT / "bench" / "out" / "sample_budget"


def write_samples(tasks: list[str], mib: int) -> Path:
    with gzip.open(DATA, "rt") as f:
        rows = {r["task_id"]: r for r in map(json.loads, f)}
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "samples.jsonl"
    with open(path, "w") as f:
        for t in tasks:
            body = f"    _blob = b'x' * ({mib} << 20)\n" + rows[t]["canonical_solution"]
            f.write(json.dumps({"task_id": t, "solution": rows[t]["prompt"] + body}) + "\n")
    return path


def run_focalpo(samples: Path, workers: int, cap: str | None) -> tuple[float, list[str]]:
    out = OUT / f"focalpo-cap-{cap or 'default'}.json"
    cmd = [str(ROOT / ".venv" / "bin" / "focalpo"), "eval", "--benchmark", "humaneval+", "--samples", str(samples),
           "--out", str(out), "--overwrite", "--no-progress", "--workers", str(workers)]  # fmt: skip
    if cap is not None:
        cmd += ["--sample-time-cap", cap]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, [r["plus_status"] for r in json.loads(out.read_text())["samples"]]


def run_evalplus(python: str, samples: Path, workers: int) -> tuple[float, list[str]]:
    """evalplus's own per-sample check (`check_correctness`, what its CLI calls per sample, fast
    check) through `_evalplus_driver.py recheck`: its CLI refuses a samples file without every task."""
    env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(DATA)}
    cmd = [python, str(ROOT / "bench" / "_evalplus_driver.py"), "recheck", "--dataset", "humaneval",
           "--samples", str(samples), "--runs", "1", "--workers", str(workers)]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    return wall, [json.loads(line)["runs"][0]["plus_status"] for line in out.splitlines() if line.startswith("{")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="HumanEval/0,HumanEval/2,HumanEval/3")
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--evalplus-python", help="python of a venv with evalplus 0.3.1 (the baseline), e.g. bench/.venv-evalplus/bin/python")
    args = ap.parse_args()
    samples = write_samples(args.tasks.split(","), args.mib)
    print(f"{len(args.tasks.split(','))} samples touching {args.mib} MiB per call, {args.workers} workers", flush=True)
    runs = [("focalpo, whole-sample limit (default)", lambda: run_focalpo(samples, args.workers, None))]
    if args.evalplus_python:
        subprocess.run([args.evalplus_python, str(ROOT / "bench" / "_evalplus_driver.py"), "warm", "--dataset", "humaneval"],
                       check=True, env={**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(DATA)})  # untimed: its ground truth
        runs.append(("evalplus 0.3.1 (check_correctness)", lambda: run_evalplus(args.evalplus_python, samples, args.workers)))
    runs.append(("focalpo, per-test limits only (--sample-time-cap 0)", lambda: run_focalpo(samples, args.workers, "0")))
    rows = []
    for name, run in runs:
        wall, verdicts = run()
        rows.append((name, wall, verdicts))
        print(f"  {name:<55} {wall:7.1f} s   plus: {', '.join(verdicts)}", flush=True)
    json.dump([{"run": n, "wall_s": w, "plus": v} for n, w, v in rows], open(OUT / "report.json", "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
