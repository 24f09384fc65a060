"""Samples per second of local `hf` sampling: prompts batched with per-prompt seeds vs one prompt per call.

    python bench/sample_throughput.py [--problems 32] [--n 4] [--max-new-tokens 48] [--batch-size 16]
        [--repeat 3] [--codeflow-problems 16] [--baseline-checkout DIR]

Two cases, each timed side by side in one run (alternating, median of `--repeat`), on a tiny Llama
(the toy world's "tiny" size, 3.7 M parameters, tokenizer trained here) on the CPU, float32. Each
side is `focalpo sample`'s own function (`run_sample`, resp. `run_codeflow`) on a backend loaded
once per side, so the time is the sampling, not Python's start and the model load (the time of the
whole `focalpo sample` command is printed too):

  sample    `run_sample` on `--problems` toy tasks, n samples each, seeded per problem, all problems in
            one `generate` call: batch_size 16 (prompts batched, each row its own random stream)
            against batch_size 1 (one prompt per `model.generate` call: the path every pipeline took
            before, since per-prompt seeds forced it). With `--baseline-checkout DIR`, also that
            checkout's own `run_sample` at batch 16 (in DIR/.venv), e.g. a worktree of the commit
            before the change. Target: >= 4x at batch 16.
  codeflow  `run_codeflow` with the tiny model as teacher on `--codeflow-problems` toy tasks, 3 rounds:
            each round's open problems in one call (batch_problems = all, batch_size 16) against one
            problem at a time (batch_problems 1, batch_size 1). The untrained model's answers are
            malformed, so every problem stays open for its rounds: the time is generation.

Both sides must give the same samples (checked: batch size does not change a prompt's samples).
Figures -> bench/out/sample_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def setup(work: Path, n_problems: int) -> tuple[Path, Path]:
    """The toy tasks file and a tiny Llama trained on nothing (its tokenizer on the tasks' text)."""
    sys.path.insert(0, str(ROOT / "src"))
    from focalpo.toyworld.model import create_toy_model
    from focalpo.toyworld.tasks import generate_tasks, write_tasks

    tasks = generate_tasks(n_problems, seed=0)
    problems = work / "tasks.jsonl"
    write_tasks(problems, tasks)
    texts = [t.instruct_prompt or t.prompt for t in tasks] + [t.canonical_solution for t in tasks]
    model = create_toy_model(work / "model", texts * 4, size="tiny", seed=0)
    return problems, model


BASELINE_SNIPPET = """
import json, sys, time
from focalpo.generate import get_backend
try:
    from focalpo.eval.sample import SampleConfig, run_sample
except ImportError:  # checkouts before focalpo.eval
    from focalpo.sample import SampleConfig, run_sample
problems, model, out, n, tokens, batch, repeat = sys.argv[1:8]
b = get_backend("hf", model=model, batch_size=int(batch), device="cpu", dtype="float32")
times = []
for _ in range(int(repeat)):
    cfg = SampleConfig(out=out, benchmark="jsonl", problems=problems, n=int(n), temperature=1.0,
                       max_new_tokens=int(tokens), batch_problems=10**6, seed=0, overwrite=True, progress=False)
    t0 = time.perf_counter(); run_sample(cfg, backend=b); times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def sample_seconds(backend, problems: Path, out: Path, args) -> float:
    from focalpo.eval.sample import SampleConfig, run_sample

    cfg = SampleConfig(out=str(out), benchmark="jsonl", problems=str(problems), limit=args.problems, n=args.n,
                       temperature=1.0, max_new_tokens=args.max_new_tokens, batch_problems=10**6, seed=0,
                       overwrite=True, progress=False)
    t0 = time.perf_counter()
    run_sample(cfg, backend=backend)
    return time.perf_counter() - t0


def codeflow_seconds(backend, problems: Path, out: Path, args, batched: bool) -> float:
    from focalpo.pipelines.codeflow import CodeflowConfig, run_codeflow

    cfg = CodeflowConfig(out=str(out), benchmark="jsonl", problems=str(problems), limit=args.codeflow_problems,
                         backend="hf", max_iterations=3, temperature=1.0, max_new_tokens=args.max_new_tokens,
                         batch_problems=args.codeflow_problems if batched else 1, workers=1, seed=0,
                         progress=False, tokenizer=None)
    t0 = time.perf_counter()
    run_codeflow(cfg, backend=backend, overwrite=True)
    return time.perf_counter() - t0


def command_seconds(problems: Path, model: Path, out: Path, args, batch_size: int) -> float:
    """Wall time of the whole `focalpo sample` command (start, model load, sampling, exit)."""
    cmd = [str(Path(sys.executable).parent / "focalpo"), "sample", "--benchmark", "jsonl", "--problems", str(problems),
           "--limit", str(args.problems), "--backend", "hf", "--model", str(model),
           "--backend-option", f"batch_size={batch_size}", "--backend-option", "device=\"cpu\"",
           "--backend-option", "dtype=\"float32\"", "--n", str(args.n), "--temperature", "1.0",
           "--max-new-tokens", str(args.max_new_tokens), "--batch-problems", "1000000", "--seed", "0",
           "--out", str(out), "--overwrite", "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def samples_of(path: Path) -> list[tuple[str, int, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted((r["task_id"], r["index"], r["raw"]) for r in rows)


def answers_of(run: Path) -> list:
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines() if line.strip()]
    return sorted((r["task_id"], json.dumps(r.get("versions"), sort_keys=True), r.get("status")) for r in records)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=32)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--codeflow-problems", type=int, default=16, help="0 skips the codeflow case")
    ap.add_argument("--baseline-checkout", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=OUT / "sample_throughput.json")
    args = ap.parse_args(argv)
    from focalpo.generate import get_backend

    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="focalpo-sample-bench-") as tmp:
        work = Path(tmp)
        problems, model = setup(work, max(args.problems, args.codeflow_problems))
        log(f"tiny Llama in {model}; {args.problems} problems x n={args.n}, {args.max_new_tokens} new tokens")
        backends = {name: get_backend("hf", model=str(model), batch_size=bs, device="cpu", dtype="float32")
                    for name, bs in (("batched", args.batch_size), ("one_per_call", 1))}
        times: dict[str, list[float]] = {k: [] for k in backends}
        for _ in range(args.repeat):
            for name, backend in backends.items():
                times[name].append(sample_seconds(backend, problems, work / f"{name}.jsonl", args))
                log(f"  sample {name}: {times[name][-1]:.2f}s")
        n_samples = args.problems * args.n
        row = {name: {"runs_s": ts, "median_s": statistics.median(ts),
                      "samples_per_s": n_samples / statistics.median(ts)} for name, ts in times.items()}
        row["same_samples"] = samples_of(work / "batched.jsonl") == samples_of(work / "one_per_call.jsonl")
        row["speedup"] = row["one_per_call"]["median_s"] / row["batched"]["median_s"]
        if args.baseline_checkout:
            python = args.baseline_checkout / ".venv" / "bin" / "python"
            got = subprocess.run([str(python), "-c", BASELINE_SNIPPET, str(problems), str(model),
                                  str(work / "baseline.jsonl"), str(args.n), str(args.max_new_tokens),
                                  str(args.batch_size), str(args.repeat)],
                                 check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
            ts = json.loads(got.stdout.strip().splitlines()[-1])
            row["baseline_checkout"] = {"runs_s": ts, "median_s": statistics.median(ts),
                                        "samples_per_s": n_samples / statistics.median(ts)}
            row["speedup_vs_baseline_checkout"] = row["baseline_checkout"]["median_s"] / row["batched"]["median_s"]
            log(f"  sample baseline checkout: {ts}")
        row["command_s"] = {name: command_seconds(problems, model, work / f"cmd-{name}.jsonl", args, bs)
                            for name, bs in (("batched", args.batch_size), ("one_per_call", 1))}
        report["sample"] = row
        if args.codeflow_problems:
            ct: dict[str, list[float]] = {"batched": [], "one_per_call": []}
            for _ in range(args.repeat):
                for name in ct:
                    ct[name].append(codeflow_seconds(backends[name], problems, work / f"cf-{name}", args,
                                                     name == "batched"))
                    log(f"  codeflow {name}: {ct[name][-1]:.2f}s")
            cf = {name: {"runs_s": ts, "median_s": statistics.median(ts)} for name, ts in ct.items()}
            cf["same_records"] = answers_of(work / "cf-batched") == answers_of(work / "cf-one_per_call")
            cf["speedup"] = cf["one_per_call"]["median_s"] / cf["batched"]["median_s"]
            report["codeflow"] = cf
    OUT.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    s = report["sample"]
    print(f"\nsample ({n_samples} samples): batched {s['batched']['samples_per_s']:.1f} samples/s, one prompt per call "
          f"{s['one_per_call']['samples_per_s']:.1f} samples/s: {s['speedup']:.2f}x (target >= 4x); "
          f"same samples: {s['same_samples']}")
    c_s = s["command_s"]
    print(f"  whole `focalpo sample` command: batched {c_s['batched']:.1f}s, one prompt per call "
          f"{c_s['one_per_call']:.1f}s (Python start and model load included)")
    if "speedup_vs_baseline_checkout" in s:
        print(f"  baseline checkout {s['baseline_checkout']['samples_per_s']:.1f} samples/s: "
              f"{s['speedup_vs_baseline_checkout']:.2f}x")
    if "codeflow" in report:
        c = report["codeflow"]
        print(f"codeflow ({args.codeflow_problems} problems, 3 rounds): batched {c['batched']['median_s']:.2f}s, "
              f"one problem at a time {c['one_per_call']['median_s']:.2f}s: {c['speedup']:.2f}x; "
              f"same records: {c['same_records']}")
    print(f"figures -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
