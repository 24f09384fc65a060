"""Unbiased pass@k and run summaries: the pure numbers of benchmark evaluation.

Nothing here runs code; it turns sample records (one per generated program, as written to
`results.json`) into numbers and tables:

    >>> pass_at_k(n=2, c=1, k=1)
    0.5
    >>> mean_pass_at_k({"t/0": [True, False], "t/1": [False, False]}, ks=(1, 10))
    {'pass@1': 0.25}

A *sample record* has the fields `task_id`, `sample_index` (order within the task),
`base_status` ("pass"/"fail"), `plus_status` ("pass"/"fail"/None when the benchmark has only base
tests), `status` ("pass" only if every test passed), `failures` (a list of {test, status, message}
with the statuses of `focalpo.sandbox.types.Status`), `missing_modules` (optional) and `solution`.

- `pass_at_k`, `mean_pass_at_k`: the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374,
  Eq. 1) in the numerically stable product form used by evalplus; a k is reported only when every
  task has at least k samples.
- `summarize`, `format_summary_table`: the "summary" part of `results.json` (pass@k for the base
  tests and for base+plus tests, as evalplus) and a fixed-width text table of it.
- `summarize_by`, `format_breakdown`: the same per group of tasks (`focalpo eval --by difficulty`:
  LiveCodeBench's Easy / Medium / Hard, and the average over all tasks, as the papers report it).

Error types of failing samples: `focalpo.eval.errors`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence

DEFAULT_KS = (1, 10, 100)

# --------------------------------------------------------------------------------------------------
# pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) for one task with n samples of which c are correct.

    Computed as `1 - prod_{i=n-c+1}^{n} (1 - k/i)` (evalplus), which never forms the huge binomials.
    Raises ValueError unless 1 <= k <= n and 0 <= c <= n.
    """
    n, c, k = operator.index(n), operator.index(c), operator.index(k)
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got c={c}, n={n}")
    if k > n:
        raise ValueError(f"pass@k needs k <= n (samples per task), got k={k}, n={n}")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    out: list[int] = []
    for k in ks:
        k = operator.index(k)
        if k < 1:
            raise ValueError(f"ks must be positive integers, got {k}")
        if k not in out:
            out.append(k)
    return tuple(out)


def mean_pass_at_k(results: Mapping[str, Sequence[bool]], ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean over tasks of pass@k, for each k in `ks` with k <= the smallest number of samples of a task.

    `results` maps task_id -> correctness of each of its samples. Returns {"pass@1": ..., ...} in the
    order of `ks`; a k larger than some task's sample count is left out (as evalplus does).
    Raises ValueError when `results` is empty.
    """
    ks = _check_ks(ks)
    if not results:
        raise ValueError("mean_pass_at_k: no tasks")
    counts = [(len(s), sum(bool(x) for x in s)) for s in results.values()]
    min_n = min(n for n, _ in counts)
    return {
        f"pass@{k}": math.fsum(pass_at_k(n, c, k) for n, c in counts) / len(counts) for k in ks if k <= min_n
    }


# --------------------------------------------------------------------------------------------------
# summary of a run


def _record_where(i: int, rec: Mapping) -> str:
    return f"sample record {i} (task {rec.get('task_id')!r}, sample {rec.get('sample_index')!r})"


def _split_results(records: Sequence[Mapping]) -> tuple[dict[str, list[bool]], dict[str, list[bool]], bool]:
    """task_id -> [base passed], task_id -> [base and plus passed], whether any record has plus tests."""
    base: dict[str, list[bool]] = {}
    plus: dict[str, list[bool]] = {}
    seen: set[tuple[str, object]] = set()
    has_plus = False
    for i, rec in enumerate(records):
        where = _record_where(i, rec)
        tid = rec.get("task_id")
        if not isinstance(tid, str):
            raise ValueError(f"{where}: field 'task_id' must be a string, got {tid!r}")
        key = (tid, rec.get("sample_index"))
        if key in seen:
            raise ValueError(f"{where}: duplicate (task_id, sample_index); were shards merged twice?")
        seen.add(key)
        b, p = rec.get("base_status"), rec.get("plus_status")
        if b not in ("pass", "fail"):
            raise ValueError(f"{where}: field 'base_status' must be 'pass' or 'fail', got {b!r}")
        if p not in ("pass", "fail", None):
            raise ValueError(f"{where}: field 'plus_status' must be 'pass', 'fail' or null, got {p!r}")
        has_plus |= p is not None
        base.setdefault(tid, []).append(b == "pass")
        # plus = base and plus tests all pass (evalplus); None = no extra tests, base decides.
        plus.setdefault(tid, []).append(b == "pass" and p != "fail")
    return base, plus, has_plus


def summarize(sample_records: Sequence[Mapping], ks: Iterable[int] = DEFAULT_KS, *, benchmark: str = "") -> dict:
    """The "summary" part of results.json.

    Returns {"benchmark", "n_tasks", "n_samples", "min_samples_per_task", "max_samples_per_task",
    "base": {"pass@k": float, ...}, "plus": {...} or None}. "plus" counts a sample as correct when
    its base and plus tests all pass; it is None when no record has plus tests (a record with
    `plus_status` None in a run that has plus tests counts with its base verdict). Only k <= the
    smallest number of samples of a task are reported. Raises ValueError naming the bad record.
    """
    base, plus, has_plus = _split_results(sample_records)
    if not base:
        raise ValueError("summarize: no sample records")
    sizes = [len(v) for v in base.values()]
    return {
        "benchmark": benchmark,
        "n_tasks": len(base),
        "n_samples": sum(sizes),
        "min_samples_per_task": min(sizes),
        "max_samples_per_task": max(sizes),
        "base": mean_pass_at_k(base, ks),
        "plus": mean_pass_at_k(plus, ks) if has_plus else None,
    }


def format_summary_table(summary: Mapping | Sequence[Mapping], *, label: str = "benchmark") -> str:
    """Fixed-width table of one summary (or several, one benchmark each); pass@k in percent.

        benchmark  split  pass@1  pass@10  pass@100  n tasks  n samples
        humaneval  base    50.0%        -         -        2          4
    """
    summaries = [summary] if isinstance(summary, Mapping) else list(summary)
    ks: list[int] = []
    for s in summaries:
        for split in ("base", "plus"):
            for key in s.get(split) or {}:
                k = int(key.removeprefix("pass@"))
                if k not in ks:
                    ks.append(k)
    ks = sorted(set(ks) | set(DEFAULT_KS))
    header = [label, "split", *(f"pass@{k}" for k in ks), "n tasks", "n samples"]
    rows = [header]
    for s in summaries:
        for split in ("base", "plus"):
            scores = s.get(split)
            if scores is None:
                continue
            cells = [f"{100 * scores[f'pass@{k}']:.1f}%" if f"pass@{k}" in scores else "-" for k in ks]
            rows.append([s.get("benchmark") or "-", split, *cells, str(s["n_tasks"]), str(s["n_samples"])])
    widths = [max(len(r[j]) for r in rows) for j in range(len(header))]
    lines = []
    for r in rows:
        left = [r[j].ljust(widths[j]) for j in range(2)]  # names left, numbers right
        right = [r[j].rjust(widths[j]) for j in range(2, len(r))]
        lines.append("  ".join(left + right).rstrip())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# breakdown by a problem metadata field

_ORDER = {"easy": 0, "medium": 1, "hard": 2}  # LiveCodeBench's difficulties, in their natural order


def summarize_by(sample_records: Sequence[Mapping], groups: Mapping[str, str], ks: Iterable[int] = DEFAULT_KS, *,
                 benchmark: str = "") -> dict[str, dict]:
    """{group: `summarize` of the records of its tasks}; `groups` maps each task id to its group.

    Groups are ordered easy < medium < hard when they are difficulties, else by name."""
    by: dict[str, list[Mapping]] = {}
    for rec in sample_records:
        task_id = rec.get("task_id")
        if task_id not in groups:
            raise ValueError(f"summarize_by: task {task_id!r} has no group")
        by.setdefault(groups[task_id], []).append(rec)
    order = sorted(by, key=lambda g: (_ORDER.get(g.lower(), len(_ORDER)), g))
    return {g: summarize(by[g], ks, benchmark=benchmark) for g in order}


def format_breakdown(field: str, groups: Mapping[str, Mapping], overall: Mapping | None = None) -> str:
    """`format_summary_table` with one row per group of `field` (and "all" for `overall`, every task)."""
    rows = [{**s, "benchmark": g} for g, s in groups.items()]
    if overall is not None:
        rows.append({**overall, "benchmark": "all"})
    return format_summary_table(rows, label=field)
