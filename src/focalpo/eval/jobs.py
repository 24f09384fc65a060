"""How a sample's tests become sandbox jobs: the harnesses' time budgets, chunks, results put back together.

- `sample_budget`: the wall seconds a sample's test list may take in all, as the benchmark's own
  harness allows (evalplus, BigCodeBench, LiveCodeBench), shared by the jobs that run it;
- `sample_jobs`: the jobs of one sample (light base and plus lists share a job as two fail-fast
  segments; heavy lists are cut into chunks of about `chunk_target` reference seconds by
  `split_by_cost`);
- `split_result` / `merge_results`: one result per test list again.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Sequence

from focalpo.problems.types import Problem
from focalpo.sandbox.types import ExecResult

if TYPE_CHECKING:
    from focalpo.sandbox import Job, TimeBudget

# Reference seconds of tests per job when a heavy test list is split (see chunk_target).
CHUNK_SECONDS = 0.25  # the least
MAX_CHUNK_SECONDS = 1.0  # the most
CHUNKS_PER_WORKER = 8  # in between: the run's reference seconds over this many chunks per worker
BIGCODEBENCH = ("bigcodebench", "bigcodebench-complete", "bigcodebench-instruct")
# The harnesses' caps of a sample's whole run (`sample_budget`), in seconds.
EVALPLUS_SAMPLE_CAP = 60.0  # evalplus 0.3.1: EVALPLUS_TIMEOUT_PER_TASK
BIGCODEBENCH_SAMPLE_CAP = 240.0  # BigCodeBench: BIGCODEBENCH_TIMEOUT_PER_TASK
# Benchmarks whose tests have no per-test limit from a reference run get this many seconds.
# BigCodeBench's harness has no per-test limit, only its whole-sample one (`sample_budget`):
# a test may take all of it (BigCodeBench/1104 waits 60 s for a script by design).
DEFAULT_TEST_TIME = {name: BIGCODEBENCH_SAMPLE_CAP for name in BIGCODEBENCH}


def sample_budget(benchmark: str, test_limits: Sequence[float], cap: float | None, details: bool) -> float | None:
    """Wall seconds one sample's test list (its base tests; its plus tests) may take in all, as
    the benchmark's own harness allows before it kills the sample's process; None: unbounded.

    - evalplus 0.3.1 (`untrusted_check`; HumanEval(+), MBPP+, and focalpo's jsonl benchmarks):
      `timeout = min(EVALPLUS_TIMEOUT_PER_TASK, sum of the per-test limits) + 1`, +1 more without
      the fast check, then `join(timeout + 1)`: min(cap, sum) + 2 s (+3 s with --details), cap 60 s.
    - BigCodeBench (`untrusted_check`): `max(BIGCODEBENCH_TIMEOUT_PER_TASK, ...) + 1`, joined for
      one more second: cap + 2 s, cap 240 s (its reference times are not at hand: the floor).
    - LiveCodeBench (`check_correctness`): `join((timeout + 1) * n_tests + 5)`: the sum of the
      per-test limits plus 1 s each and 5 s; no cap.
    `cap` None: the benchmark's default; 0: no budget at all.
    """
    if cap == 0:
        return None
    if benchmark in BIGCODEBENCH:
        return _cap(benchmark, cap) + 2.0
    if benchmark == "livecodebench":
        return sum(t + 1.0 for t in test_limits) + 5.0
    return min(_cap(benchmark, cap), sum(test_limits)) + _evalplus_slack(details)


def sample_budget_rule(benchmark: str, cap: float | None, details: bool) -> str:
    """`sample_budget` in words, for results.json."""
    if cap == 0:
        return "none: per-test limits only (--sample-time-cap 0)"
    if benchmark in BIGCODEBENCH:
        return f"{_cap(benchmark, cap) + 2.0:g} s per sample (BigCodeBench's harness: cap + 2 s)"
    if benchmark == "livecodebench":
        return "sum of (per-test limit + 1 s) + 5 s per test list (LiveCodeBench's harness)"
    return (f"min({_cap(benchmark, cap):g} s, sum of the per-test limits) + {_evalplus_slack(details):g} s "
            "per test list (evalplus 0.3.1)")  # fmt: skip


def _cap(benchmark: str, cap: float | None) -> float:
    if cap is not None:
        return cap
    return BIGCODEBENCH_SAMPLE_CAP if benchmark in BIGCODEBENCH else EVALPLUS_SAMPLE_CAP


def _evalplus_slack(details: bool) -> float:
    return 3.0 if details else 2.0  # its timeout's +1 (+1 more without the fast check), joined 1 s more


def sample_jobs(
    problem: Problem, program: str, n: int, base_only: bool, target: float,
    budget: Callable[[Sequence], TimeBudget | None] = lambda tests: None,
) -> list[tuple[Job, tuple[str, ...]]]:  # fmt: skip
    """The jobs of sample number `n`, each with the test splits it covers: light splits share one
    job, heavy ones are cut into chunks of about `target` reference seconds (see `chunk_target`).
    `budget(tests)` gives a split's whole-sample time budget, shared by the jobs that run it."""
    from focalpo.sandbox import Job

    splits = ["base"] if base_only else list(problem.tests)
    ref = problem.meta.get("ref_seconds", {})
    libs = problem.meta.get("libs", ())
    budgets = {split: budget(problem.tests[split]) for split in splits}
    chunked = {split: split_by_cost(problem.tests[split], ref, target) for split in splits}
    whole = [c[0] for c in chunked.values() if len(c) == 1 and c[0][0]]  # (tests, cost) of unsplit lists
    if len(splits) > 1 and len(whole) == len(splits) and sum(cost for _, cost in whole) <= target:
        # Light splits share one job, each its own fail-fast segment (see Job.segments).
        starts = list(itertools.accumulate(len(tests) for tests, _ in whole))[:-1]
        tests = [t for part, _ in whole for t in part]
        parts = [budgets[split] for split in splits]
        job = Job(program, tests, cost=sum(cost for _, cost in whole), segments=starts, imports=libs,
                  budgets=parts if None not in parts else ())  # fmt: skip
        return [(job, tuple(splits))]
    jobs = []
    for split in splits:
        chunks = chunked[split]
        group = (n, split) if len(chunks) > 1 else None  # fail-fast across the chunks
        part = [budgets[split]] if budgets[split] is not None else []
        jobs += [(Job(program, chunk, cost=cost, group=group, imports=libs, budgets=part), (split,)) for chunk, cost in chunks]
    return jobs


def chunk_target(total_seconds: float, workers: int) -> float:
    """Reference seconds of tests per job for a run whose tests take `total_seconds` in all.

    Chunks let a heavy list spread over every worker instead of holding one while the others
    idle; with the costliest jobs started first, light jobs fill the gaps at the end. But each
    chunk is a fresh process, which re-imports the program (~1 ms) and faults in all the memory
    it uses anew (a HumanEval/15 job: 21k page faults, against 11k per big input in a process
    that already ran one). So chunks are as big as `CHUNKS_PER_WORKER` per worker allows, within
    [`CHUNK_SECONDS`, `MAX_CHUNK_SECONDS`]: reference times mispredict (a big return value costs
    more to send than to compute), and the run's last gap is about one chunk long.
    """
    return min(MAX_CHUNK_SECONDS, max(CHUNK_SECONDS, total_seconds / (max(1, workers) * CHUNKS_PER_WORKER)))


def split_by_cost(tests: Sequence, ref_seconds: dict[str, float], target: float = CHUNK_SECONDS) -> list[tuple[list, float]]:
    """Consecutive runs of tests whose reference run time adds up to about `target` seconds
    (see `chunk_target`). Tests without a reference time count as free, so such lists stay whole.
    """
    chunks: list[tuple[list, float]] = []
    cur: list = []
    acc = 0.0
    for t in tests:
        c = float(ref_seconds.get(t.name, 0.0))
        if cur and acc + c > target:
            chunks.append((cur, acc))
            cur, acc = [], 0.0
        cur.append(t)
        acc += c
    if cur or not chunks:
        chunks.append((cur, acc))
    return chunks


def split_result(result: ExecResult, sizes: Sequence[int]) -> list[ExecResult]:
    """The results of consecutive test lists of these sizes that ran as one job's segments.
    Each part keeps the job's load error and output (they cannot be told apart)."""
    if len(sizes) == 1:
        return [result]
    bounds = [0, *itertools.accumulate(sizes)]
    return [replace(result, verdicts=result.verdicts[a:b]) for a, b in zip(bounds, bounds[1:])]


def merge_results(parts: Sequence[ExecResult]) -> ExecResult:
    """One result from the results of consecutive chunks of one test list."""
    if len(parts) == 1:
        return parts[0]
    return ExecResult(
        verdicts=[v for p in parts for v in p.verdicts],
        load_error=next((p.load_error for p in parts if p.load_error), ""),
        stdout="".join(p.stdout for p in parts),
        stderr="".join(p.stderr for p in parts),
        stdout_truncated=any(p.stdout_truncated for p in parts),
        stderr_truncated=any(p.stderr_truncated for p in parts),
        duration=sum(p.duration for p in parts),
        isolation=parts[0].isolation,
        missing_modules=sorted({m for p in parts for m in p.missing_modules}),
    )
