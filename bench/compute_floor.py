"""The speed of an evaluator with zero overhead: the canonical solutions' own compute.

    .venv/bin/python bench/compute_floor.py --case p1 [--workers 2] [--json]

Runs every test of the case (the same inputs as `evalplus_compare.py`: p1 = HumanEval+ base +
plus, p3 = MBPP+ base + plus, p2 = HumanEval+ base only, ten copies) by calling the reference
solution in-process, with a deep copy of the arguments as evalplus does, and nothing else: no
sandbox, no judging, no process per sample. Two measurements:

- `single_cpu_s`: one process, all tests, CPU seconds (`time.process_time`);
- `ideal_wall_s`: `--workers` forked processes sharing the tests dynamically (tasks with many
  tests split into chunks, longest first), wall seconds from the first call to the last result.

`ideal_wall_s` is what no evaluator that runs these tests on this machine can beat, and
`contention = ideal_wall_s * workers / single_cpu_s` says how much slower each core computes
while the others are busy too (1.0 = perfect scaling; the 2-vCPU dev VM shows ~1.25).
The solutions are the dataset's own reference code (trusted), so they run unsandboxed here.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import samples as bench_samples  # noqa: E402  (bench/samples.py: the cases)

from focalpo.problems import load_benchmark  # noqa: E402

_UNITS: list = []  # (program, entry point, [args...]) per unit, inherited by the forked workers


def _units(case: bench_samples.Case, data_dir: Path) -> list[tuple[str, str, list]]:
    splits = ["base"] if case.base_only else ["base", "plus"]
    problems = load_benchmark(case.benchmark, bench_samples.data_file(case.benchmark, data_dir), splits=splits)
    units = []
    for p in problems:
        args = [t.args for s in splits for t in p.tests[s]]
        units += [(p.reference_program(), p.entry_point, args)] * case.copies
    return units


def _run(unit: tuple[str, str, list]) -> float:
    program, entry, arg_lists = unit
    ns: dict = {}
    exec(compile(program, "solution.py", "exec", dont_inherit=True), ns)
    fn = ns[entry]
    t0 = time.process_time()
    for args in arg_lists:
        try:
            fn(*copy.deepcopy(args))
        except Exception:  # noqa: BLE001 - a reference solution may raise on an input; evalplus records that too
            pass
    return time.process_time() - t0


def _run_index(i: int) -> float:
    return _run(_UNITS[i])


def measure(case_name: str, workers: int, data_dir: Path) -> dict:
    global _UNITS
    case = bench_samples.CASES[case_name]
    units = _units(case, data_dir)
    costs = [_run(u) for u in units]
    single = sum(costs)
    # Chunks for the parallel run: no unit above a quarter of a worker's fair share.
    cap = single / workers / 4
    chunked, est = [], []
    for (program, entry, args), cost in zip(units, costs):
        parts = max(1, min(len(args), int(cost / cap) + 1)) if cap > 0 else 1
        step = -(-len(args) // parts) if args else 1
        for k in range(0, max(len(args), 1), step):
            chunked.append((program, entry, args[k : k + step]))
            est.append(cost * len(args[k : k + step]) / max(len(args), 1))
    order = sorted(range(len(chunked)), key=lambda i: -est[i])
    _UNITS = [chunked[i] for i in order]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(abs, range(workers * 4))  # workers are up before timing
        t0 = time.perf_counter()
        parallel_cpu = sum(pool.imap_unordered(_run_index, range(len(_UNITS)), chunksize=1))
        wall = time.perf_counter() - t0
    return {
        "case": case_name,
        "workers": workers,
        "tests": sum(len(a) for _, _, a in units),
        "single_cpu_s": round(single, 3),
        "ideal_wall_s": round(wall, 3),
        "parallel_cpu_s": round(parallel_cpu, 3),
        "contention": round(wall * workers / single, 3) if single else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(bench_samples.CASES), default="p1")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=bench_samples.DEFAULT_DATA_DIR)
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of a sentence")
    args = ap.parse_args()
    row = measure(args.case, args.workers, args.data_dir)
    if args.json:
        print(json.dumps({"floor": row}))
    else:
        print(f"{row['case']}: {row['tests']} tests; one core {row['single_cpu_s']:.1f} CPU-s; "
              f"{row['workers']} workers, zero overhead: {row['ideal_wall_s']:.2f} s wall "
              f"(contention x{row['contention']:.2f})")


if __name__ == "__main__":
    main()
