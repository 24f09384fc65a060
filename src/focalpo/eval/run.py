"""Evaluate model samples on a benchmark: the engine behind `focalpo eval`.

    focalpo eval --benchmark humaneval+ --samples samples.jsonl --out results.json

Samples are evalplus-format JSONL (`task_id` + `solution` or `completion`). Each sample runs in the
sandbox against the problem's base tests and, separately, its plus tests (as evalplus does, so
`base_status` and `plus_status` are independent); by default each stops at its first failing
test (evalplus's fast check), `details=True` runs every test. Light base and plus lists share one
job as two fail-fast segments (a failure in the base tests does not stop the plus tests).
Expected outputs of HumanEval+/MBPP+ come from `focalpo.problems.groundtruth` (computed once, cached on
disk). Jobs reach the pool task by task, costliest task first, as each task's tests are filled
with their expected outputs: the first samples run while the other tasks are still being filled.
"""

from __future__ import annotations

import gc
import json
import itertools
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from focalpo.io import write_json
from focalpo.eval.errors import error_table, format_missing_modules, missing_module_counts
from focalpo.eval.passk import format_summary_table, summarize
from focalpo.extract import program_from_sample, read_samples
from focalpo.problems import Problem, benchmark_path, load_benchmark
from focalpo.sandbox.types import ExecResult, Limits, Status

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


@dataclass(frozen=True)
class EvalConfig:
    """Options of one evaluation run (`focalpo eval`: flags, `--config` YAML, key=value overrides)."""

    benchmark: str = ""  # a focalpo.problems benchmark name
    samples: str = ""  # evalplus-format JSONL (task_id + solution|completion) or sample directory
    canonical: bool = False  # evaluate the benchmark's reference solutions instead of `samples`
    data: str | None = None
    out: str | None = None
    workers: int | None = None
    base_only: bool = False
    details: bool = False
    min_time_limit: float = 1.0  # evalplus: max(min_time_limit, time_factor * t_reference)
    time_factor: float = 4.0
    test_time: float | None = None  # tests without a reference time (HumanEval asserts, BigCodeBench)
    # seconds the harness's whole-sample limit is capped at (`sample_budget`): None = the
    # benchmark's (evalplus 60, BigCodeBench 240), 0 = no whole-sample limit, per-test limits only
    sample_time_cap: float | None = None
    memory: int = Limits().memory
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Raise ValueError naming the first invalid option."""
        if not self.benchmark:
            raise ValueError("eval config: benchmark: give a benchmark (--benchmark)")
        if bool(self.samples) == self.canonical:
            raise ValueError("eval config: give either samples (--samples) or canonical (--canonical), not both")


def default_out_path(samples: str) -> Path:
    p = Path(samples)
    stem = p.name.removesuffix(".gz").removesuffix(".jsonl")
    return p.with_name(stem + ".eval_results.json")


def _load(cfg: EvalConfig) -> tuple[list[Problem], Path]:
    path = benchmark_path(cfg.benchmark, cfg.data)
    return load_benchmark(cfg.benchmark, path, splits=["base"] if cfg.base_only else None), path


def _read(cfg: EvalConfig, problems: dict[str, Problem]) -> list[tuple[dict, str]]:
    """(sample, program) pairs in file order; unknown task ids are an error naming the line."""
    out = []
    for s in read_samples(cfg.samples, task_ids=problems):
        problem = problems.get(s["task_id"])
        if problem is None:
            where = f"{s.get('_file')}:{s.get('_line')}" if s.get("_line") else s.get("_file")
            raise ValueError(f"{where}: field 'task_id': {s['task_id']!r} is not a task of {cfg.benchmark}")
        out.append((s, problem.program_for(program_from_sample(s, problem.code_prefix))))
    if not out:
        raise ValueError(f"{cfg.samples}: no samples")
    return out


def _record(task_id: str, index: int, program: str, base: ExecResult, plus: ExecResult | None) -> dict:
    def status(r: ExecResult | None) -> str | None:
        return None if r is None else ("pass" if r.passed else "fail")

    failures = [
        {"test": v.name, "status": v.status, "message": v.message}
        for r in (base, plus)
        if r is not None
        for v in r.verdicts
        if v.status not in (Status.PASS, Status.NOT_RUN)
    ]
    b, p = status(base), status(plus)
    return {
        "task_id": task_id,
        "sample_index": index,
        "base_status": b,
        "plus_status": p,
        "status": "pass" if b == "pass" and p in ("pass", None) else "fail",
        "failures": failures,
        # modules it could not import that this environment lacks (focalpo.sandbox.environment)
        "missing_modules": sorted({m for r in (base, plus) if r is not None for m in r.missing_modules}),
        "solution": program,
    }


def evaluate_benchmark(cfg: EvalConfig) -> dict:
    """Run the evaluation and return the results dict, also written to `cfg.out` (default: beside the
    samples, `default_out_path`). With `canonical`, the samples are the reference solutions, written
    to a temporary file that is removed afterwards (the results keep each program)."""
    cfg.check()
    if not cfg.canonical:
        return _evaluate(cfg)
    samples = canonical_samples(cfg.benchmark, cfg.data)
    try:
        return _evaluate(replace(cfg, samples=samples, canonical=False, out=cfg.out or str(default_out_path(samples))))
    finally:
        Path(samples).unlink(missing_ok=True)


def canonical_samples(benchmark: str, data: str | None) -> str:
    """A temporary samples file holding the benchmark's reference solutions; the caller removes it."""
    problems = load_benchmark(benchmark, data)
    fd, path = tempfile.mkstemp(prefix=f"{benchmark.replace('+', 'plus')}-canonical-", suffix=".jsonl")
    with open(fd, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n")
    return path


def _evaluate(cfg: EvalConfig) -> dict:
    from focalpo.problems.groundtruth import prepare_expected
    from focalpo.sandbox import ExecPool, TimeBudget

    out = Path(cfg.out) if cfg.out else default_out_path(cfg.samples)
    if out.exists() and not cfg.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it, or --out another path")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    test_time = cfg.test_time or DEFAULT_TEST_TIME.get(cfg.benchmark, Limits().test_time)
    limits = Limits(test_time=test_time, memory=cfg.memory, fail_fast=not cfg.details)
    # The pool's zygotes boot in the background while the benchmark, the samples and the ground
    # truth load. A task's libraries (BigCodeBench) are imported by a zygote before the first job
    # that needs them (`Job.imports`), not all of them up front.
    with ExecPool(workers=cfg.workers, limits=limits) as pool, _gc_paused():
        problems, data_path = _load(cfg)
        by_id = {p.task_id: p for p in problems}
        samples = _read(cfg, by_id)
        timings["load"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        by_task: dict[str, list[int]] = {}
        for n, (s, _) in enumerate(samples):
            by_task.setdefault(s["task_id"], []).append(n)
        truth = prepare_expected(
            [by_id[t] for t in by_task],
            data_path,
            pool=pool,
            splits=["base"] if cfg.base_only else None,
            min_time_limit=cfg.min_time_limit,
            time_factor=cfg.time_factor,
        )
        timings["ground_truth"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        owners: list[tuple[int, tuple[str, ...]]] = []  # (sample number, splits) of each job

        def budget(tests) -> TimeBudget | None:
            seconds = sample_budget(cfg.benchmark, [limits.time_for(t) for t in tests], cfg.sample_time_cap, cfg.details)
            return None if seconds is None else TimeBudget(seconds)

        def jobs():
            """Each task's jobs, costliest task first: its samples run while the next task's tests
            are being filled."""
            cost = {t: truth.reference_seconds(t) for t in by_task}  # of one sample
            target = chunk_target(sum(cost[t] * len(ns) for t, ns in by_task.items()), pool.workers)
            for task_id in sorted(by_task, key=lambda t: -cost[t]):
                problem = by_id[task_id] = truth.apply(by_id[task_id])
                for n in by_task[task_id]:
                    for job, splits in _sample_jobs(problem, samples[n][1], n, cfg.base_only, target, budget):
                        owners.append((n, splits))
                        yield job
            gc.freeze()  # the loaded data: collections while the jobs run skip it
            gc.enable()

        try:
            results = pool.map(jobs(), desc="eval" if cfg.progress else None)
        finally:
            gc.unfreeze()
        timings["execute"] = time.perf_counter() - t2
        isolation = pool.isolation

    merged: dict[tuple[int, str], list[ExecResult]] = {}
    for (n, splits), r in zip(owners, results):
        parts = split_result(r, [len(by_id[samples[n][0]["task_id"]].tests[split]) for split in splits])
        for split, part in zip(splits, parts):
            merged.setdefault((n, split), []).append(part)
    per_sample = {key: merge_results(rs) for key, rs in merged.items()}
    records = [
        _record(s["task_id"], index, program, per_sample[(n, "base")], per_sample.get((n, "plus")))
        for n, ((s, program), index) in enumerate(zip(samples, _sample_indices(samples)))
    ]
    summary = summarize(records, benchmark=cfg.benchmark)
    summary["errors"] = [{"type": t, "count": n, "share": sh} for t, n, sh in error_table(records)]
    summary["missing_modules"] = missing_module_counts(records)
    result = {
        "config": {k: v for k, v in cfg.__dict__.items() if k != "progress"},
        "dataset": str(data_path),
        "sample_time_limit": sample_budget_rule(cfg.benchmark, cfg.sample_time_cap, cfg.details),
        "summary": summary,
        "timings": timings,
        "isolation": isolation,
        "samples": records,
    }
    write_json(out, result, indent=1, default=repr)
    result["out"] = str(out)
    return result


def _sample_jobs(
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


@contextmanager
def _gc_paused():
    """Loading builds millions of long-lived, acyclic objects (inputs, expected outputs, tests):
    with the cycle collector on, it re-scans them over and over (~0.5 s on HumanEval+)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()


def _sample_indices(samples) -> list[int]:
    """Position of each sample among the samples of its task (evalplus's completion id)."""
    seen: dict[str, int] = {}
    out = []
    for s, _ in samples:
        out.append(seen.get(s["task_id"], 0))
        seen[s["task_id"]] = out[-1] + 1
    return out


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


def print_report(result: dict, file=None) -> None:
    file = file or sys.stdout
    summary = result["summary"]
    print(format_summary_table(summary), file=file)
    errors = summary.get("errors") or []
    if errors:
        print("\nerror types of failing samples:", file=file)
        width = max(len(e["type"]) for e in errors[:15])
        for e in errors[:15]:
            print(f"  {e['type']:<{width}}  {e['count']:>6}  {100 * e['share']:5.1f}%", file=file)
    missing = summary.get("missing_modules") or {}
    if missing.get("samples"):
        print(f"\nwarning: {format_missing_modules(missing)}; there the score measures this environment, "
              "not the model", file=file)  # fmt: skip
    iso = result.get("isolation") or {}
    if iso and not iso.get("network_disabled"):
        print("\nwarning: the sandbox could not disable the network here: " + "; ".join(iso.get("notes", [])), file=file)
    t = result.get("timings", {})
    print(
        f"\nwrote {result['out']}  (load {t.get('load', 0):.1f}s, ground truth {t.get('ground_truth', 0):.1f}s, "
        f"execute {t.get('execute', 0):.1f}s)",
        file=file,
    )


__all__ = ["EvalConfig", "evaluate_benchmark", "print_report", "default_out_path"]
