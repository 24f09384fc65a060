"""Cost of line coverage per sandbox job, and what preloading coverage.py in the zygote saves.

    .venv/bin/python bench/coverage_preload.py [--jobs 60] [--workers 2]

Runs the same jobs (a small solution module and 3 assert tests, as `focalpo codeflow` does) three
ways side by side in one process: coverage off (baseline), coverage on with the default zygote
preload, and coverage on with `coverage` preloaded (what `focalpo codeflow` uses). Prints wall
time per job and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import time

from focalpo.sandbox import DEFAULT_PRELOAD, AssertTest, ExecPool, Job

SOLUTION = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
TESTS = [AssertTest(f"t{i}", f"from fib import fib\nassert fib({n}) == {v}") for i, (n, v) in enumerate([(1, 1), (10, 55), (20, 6765)])]


def timed(jobs: int, workers: int, coverage: bool, preload) -> float:
    with ExecPool(workers=workers, preload=preload) as pool:
        pool.map([Job(SOLUTION, TESTS, module="fib", coverage=coverage)] * workers)  # warm the zygotes
        t0 = time.perf_counter()
        results = pool.map([Job(SOLUTION, TESTS, module="fib", coverage=coverage) for _ in range(jobs)])
        dt = time.perf_counter() - t0
    assert all(r.passed for r in results)
    if coverage:
        assert all(r.coverage["percent"] == 100.0 for r in results)
    return dt / jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    runs = {"coverage off (baseline)": (False, DEFAULT_PRELOAD),
            "coverage on, default preload": (True, DEFAULT_PRELOAD),
            "coverage on, coverage preloaded": (True, (*DEFAULT_PRELOAD, "coverage"))}
    times = {name: timed(args.jobs, args.workers, *how) for name, how in runs.items()}
    base = times["coverage off (baseline)"]
    for name, t in times.items():
        print(f"{name:34s} {t * 1000:7.1f} ms/job   x{t / base:5.2f}")


if __name__ == "__main__":
    main()
