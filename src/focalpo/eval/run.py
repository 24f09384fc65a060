"""Evaluate model samples on a benchmark: the engine behind `focalpo eval`.

    focalpo eval --benchmark humaneval+ --samples samples.jsonl --out results.json

Samples are evalplus-format JSONL (`task_id` + `solution` or `completion`; or the same columns in
parquet or a `save_to_disk` directory, `focalpo.extract.read_samples`). Each sample runs in the
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
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from focalpo.datasets_io import Source, data_source
from focalpo.eval.errors import error_table, format_missing_modules, missing_module_counts
from focalpo.eval.jobs import (
    DEFAULT_TEST_TIME,
    chunk_target,
    merge_results,
    sample_budget,
    sample_budget_rule,
    sample_jobs,
    split_result,
)
from focalpo.eval.passk import format_breakdown, format_summary_table, summarize, summarize_by
from focalpo.extract import program_from_sample, read_samples
from focalpo.io import write_json
from focalpo.problems import Problem, benchmark_path, load_benchmark
from focalpo.problems.select import select_problems
from focalpo.sandbox.types import ExecResult, Limits, Status

if TYPE_CHECKING:
    from focalpo.sandbox import TimeBudget


@dataclass(frozen=True)
class EvalConfig:
    """Options of one evaluation run (`focalpo eval`: flags, `--config` YAML, key=value overrides)."""

    benchmark: str = ""  # a focalpo.problems benchmark name
    samples: str = ""  # evalplus-format JSONL (task_id + solution|completion), parquet, save_to_disk or sample dir
    canonical: bool = False  # evaluate the benchmark's reference solutions instead of `samples`
    data: str | None = None  # benchmark file, parquet, save_to_disk directory or Hub id (default: bundled copy)
    split: str | None = None  # dataset split of `data` (Hub id, DatasetDict directory)
    columns: dict[str, str] = field(default_factory=dict)  # loader field -> column of `data`
    task_ids: str | None = None  # file of task ids (one per line): evaluate this subset (BigCodeBench-Hard)
    since: str | None = None  # YYYY-MM-DD: only problems whose contest_date is on or after (LiveCodeBench)
    until: str | None = None  # YYYY-MM-DD: ... on or before
    by: list[str] = field(default_factory=list)  # problem metadata fields to break pass@k down by (difficulty)
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
    stem = p.name.removesuffix(".gz").removesuffix(".jsonl").removesuffix(".parquet")
    return p.with_name(stem + ".eval_results.json")


def _load(cfg: EvalConfig) -> tuple[list[Problem], list[Problem], Path | Source]:
    """(every problem, the selected ones: `task_ids`, `since`, `until`), and the data's path."""
    path = benchmark_path(cfg.benchmark, data_source(cfg.data, cfg.split, cfg.columns))
    problems = load_benchmark(cfg.benchmark, path, splits=["base"] if cfg.base_only else None)
    selected = select_problems(problems, task_ids=cfg.task_ids, since=cfg.since, until=cfg.until)
    if not selected:
        raise ValueError(f"{cfg.benchmark}: no problem is left after --task-ids/--since/--until")
    return problems, selected, path


def _read(cfg: EvalConfig, problems: dict[str, Problem], known: dict[str, str]) -> tuple[list[tuple[dict, str]], int]:
    """(sample, program) pairs in file order, and how many samples were skipped: those of benchmark
    tasks outside the selection (`known`: every task id); an unknown task id is an error naming the line."""
    out, skipped = [], 0
    for s in read_samples(cfg.samples, task_ids=known):
        problem = problems.get(s["task_id"])
        if problem is None and s["task_id"] in known:
            skipped += 1
            continue
        if problem is None:
            where = f"{s.get('_file')}:{s.get('_line')}" if s.get("_line") else s.get("_file")
            raise ValueError(f"{where}: field 'task_id': {s['task_id']!r} is not a task of {cfg.benchmark}")
        out.append((s, problem.program_for(program_from_sample(s, problem.code_prefix))))
    if not out:
        raise ValueError(f"{cfg.samples}: no samples" + (f" of the {len(problems)} selected tasks" if skipped else ""))
    return out, skipped


def metadata_groups(problems: list[Problem], fields: list[str]) -> dict[str, dict[str, str]]:
    """field -> {task_id: the problem's meta[field] as text, "(none)" where it lacks it}; a field that no
    problem has is an error naming the fields they have."""
    out: dict[str, dict[str, str]] = {}
    for name in fields:
        if not any(p.meta.get(name) is not None for p in problems):
            have = sorted({k for p in problems for k, v in p.meta.items() if isinstance(v, (str, int, bool))})
            raise ValueError(f"--by {name}: no problem has a metadata field {name!r}; fields: {', '.join(have) or 'none'}")
        out[name] = {p.task_id: "(none)" if p.meta.get(name) is None else str(p.meta[name]) for p in problems}
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
    samples = canonical_samples(cfg.benchmark, data_source(cfg.data, cfg.split, cfg.columns))
    try:
        return _evaluate(replace(cfg, samples=samples, canonical=False, out=cfg.out or str(default_out_path(samples))))
    finally:
        Path(samples).unlink(missing_ok=True)


def canonical_samples(benchmark: str, data: str | Source | None) -> str:
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
        every, problems, data_path = _load(cfg)
        groups = metadata_groups(problems, cfg.by)  # a bad --by fails before anything runs
        by_id = {p.task_id: p for p in problems}
        samples, skipped = _read(cfg, by_id, {p.task_id: p.task_id for p in every})
        del every
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
                    for job, splits in sample_jobs(problem, samples[n][1], n, cfg.base_only, target, budget):
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
    if cfg.task_ids or cfg.since or cfg.until:
        summary["selection"] = {"task_ids": cfg.task_ids, "since": cfg.since, "until": cfg.until,
                                "selected_tasks": len(by_id), "skipped_samples": skipped}
    if groups:
        summary["by"] = {name: summarize_by(records, group, benchmark=cfg.benchmark) for name, group in groups.items()}
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


def passed_in_order(result: dict, task_ids: Sequence[str]) -> list[bool]:
    """Whether each sample passed, for the samples of a file whose task ids are `task_ids` in file order (a
    sample's `sample_index` counts the samples of its task before it); KeyError names one without a result."""
    passed = {(r["task_id"], r["sample_index"]): r["status"] == "pass" for r in result["samples"]}
    seen: dict[str, int] = {}
    out = []
    for task_id in task_ids:
        i = seen.get(task_id, 0)
        seen[task_id] = i + 1
        if (task_id, i) not in passed:
            raise KeyError(f"no result for sample {i} of {task_id!r}")
        out.append(passed[(task_id, i)])
    return out


def print_report(result: dict, file=None) -> None:
    file = file or sys.stdout
    summary = result["summary"]
    print(format_summary_table(summary), file=file)
    for name, groups in (summary.get("by") or {}).items():
        print(f"\nby {name}:", file=file)
        print(format_breakdown(name, groups, summary), file=file, end="")
    chosen = summary.get("selection")
    if chosen:
        print(f"\nsubset: {chosen['selected_tasks']} tasks (task ids {chosen['task_ids'] or '-'}, contest dates "
              f"{chosen['since'] or '...'} to {chosen['until'] or '...'}); {chosen['skipped_samples']} samples of "
              "other tasks skipped", file=file)
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
