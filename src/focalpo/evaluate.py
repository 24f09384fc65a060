"""Pure parts of benchmark evaluation: unbiased pass@k, run summaries, error-type tables.

Nothing here runs code; it turns sample records (one per generated program, as written to
`results.json`) into numbers and tables:

    >>> pass_at_k(n=2, c=1, k=1)
    0.5
    >>> mean_pass_at_k({"t/0": [True, False], "t/1": [False, False]}, ks=(1, 10))
    {'pass@1': 0.25}
    >>> error_type("KeyError: 'abc'")
    "KeyError: 'X'"

A *sample record* has the fields `task_id`, `sample_index` (order within the task),
`base_status` ("pass"/"fail"), `plus_status` ("pass"/"fail"/None when the benchmark has only base
tests), `status` ("pass" only if every test passed), `failures` (a list of {test, status, message}
with the statuses of `focalpo.sandbox.types.Status`), `missing_modules` (optional) and `solution`.

- `pass_at_k`, `mean_pass_at_k`: the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374,
  Eq. 1) in the numerically stable product form used by evalplus; a k is reported only when every
  task has at least k samples.
- `summarize`, `format_summary_table`: the "summary" part of `results.json` (pass@k for the base
  tests and for base+plus tests, as evalplus) and a fixed-width text table of it.
- `error_type`, `sample_error_type`, `error_table`: Target-DPO-style error analysis (arXiv
  2503.02783): each failing sample is reduced to one normalised error type and the types counted.
- `missing_module_counts`, `format_missing_modules`: the failing samples that could not import a
  module this environment lacks (record field `missing_modules`), so that a report says where
  the score measures the environment rather than the model.
"""

from __future__ import annotations

import math
import operator
import re
import signal
from collections.abc import Iterable, Mapping, Sequence

from focalpo.sandbox.types import Status

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


def format_summary_table(summary: Mapping | Sequence[Mapping]) -> str:
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
    header = ["benchmark", "split", *(f"pass@{k}" for k in ks), "n tasks", "n samples"]
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
# error types

# Builtin type names (and operator symbols) kept verbatim inside quotes in TypeError/AttributeError
# messages: they say what went wrong ("'NoneType' object is not subscriptable", "'<' not supported
# between instances of 'str' and 'int'"), unlike user names and values.
BUILTIN_TYPE_NAMES = frozenset(
    """int float complex bool str bytes bytearray memoryview list tuple dict set frozenset range slice
    object type NoneType NotImplementedType ellipsis function builtin_function_or_method method
    generator coroutine module map filter zip enumerate reversed property staticmethod classmethod
    super dict_keys dict_values dict_items list_iterator tuple_iterator str_iterator range_iterator
    set_iterator""".split()
)
_TYPE_KEEPING_ERRORS = ("TypeError", "AttributeError")

_STATUS_TYPES = {Status.WRONG_ANSWER: "WrongAnswer", Status.TIMEOUT: "Timeout", Status.MEMORY: "MemoryExceeded"}
# focalpo.sandbox.pool prefixes this to every verdict of a program that raised while loading.
LOAD_FAILURE_PREFIX = "program failed to load: "
_HEAD = re.compile(r"([A-Za-z_][\w.]*)(?::\s*(.*))?", re.S)
_QUOTED = re.compile(r"""(?<!\w)(?:'([^'\n]*)'|"([^"\n]*)")(?!\w)""")
_NUMBER = re.compile(r"(?<![\w.])-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?!\w|\.\d)")
_OPERATOR = re.compile(r"[-+*/%@<>=!&|^~]{1,3}")
_DID_YOU_MEAN = re.compile(r"\.?\s*Did you mean:?.*$")
_LOCATION = re.compile(r"\s*\([^()]*, line N\)$")
_SIGNAL = re.compile(r"\b(SIG[A-Z0-9]+)\b|\b(?i:signal)\s+(\d+)\b")


def _normalise_detail(detail: str, keep_types: bool) -> str:
    """Replace values and user names by placeholders: quoted strings -> 'X', numbers -> N."""

    def quoted(m: re.Match) -> str:
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        informative = inner in BUILTIN_TYPE_NAMES or _OPERATOR.fullmatch(inner) is not None
        return m.group(0) if keep_types and informative else "'X'"

    detail = _DID_YOU_MEAN.sub("", detail)  # NameError hints vary with what else is defined
    detail = _QUOTED.sub(quoted, detail)
    detail = _NUMBER.sub("N", detail)
    detail = _LOCATION.sub("", detail)  # SyntaxError "(<string>, line N)": the file name varies
    return " ".join(detail.split())


def _truncate(s: str, max_len: int) -> str:
    return s if len(s) <= max_len else s[: max_len - 3].rstrip() + "..."


def _crash_type(message: str) -> str:
    m = _SIGNAL.search(message)
    if m is None:
        return "Crashed"
    if m.group(1):
        return f"Crashed: {m.group(1)}"
    try:
        return f"Crashed: {signal.Signals(int(m.group(2))).name}"
    except ValueError:
        return "Crashed"


def error_type(message: str, status: str = Status.EXCEPTION, *, max_len: int = 80) -> str:
    """Normalised error type of one failed test, for counting.

    Statuses without an exception map to fixed names: wrong_answer -> "WrongAnswer", timeout ->
    "Timeout", memory -> "MemoryExceeded", crashed -> "Crashed: SIGSEGV" (signal from the message,
    else "Crashed"), not_run without a message -> "NotRun". An exception message "ClassName: detail"
    keeps the class and normalises the detail:

    - quoted strings become 'X' (double quotes too), except that in TypeError and AttributeError
      messages a quoted *builtin type name* (`BUILTIN_TYPE_NAMES`) or operator symbol ('+', '<',
      '**') is kept as it is;
    - numbers (ints, floats, hex addresses) become N;
    - NameError's "Did you mean: ...?" hint, SyntaxError's "(file, line N)" and the sandbox's
      "program failed to load: " prefix are dropped;
    - whitespace is collapsed, an empty detail leaves the class alone, and the result is cut to
      `max_len` characters ("..." marks the cut).

        "KeyError: 'abc'"                          -> "KeyError: 'X'"
        "IndexError: list index out of range"      -> unchanged
        "TypeError: unsupported operand type(s) for +: 'int' and 'str'"  -> unchanged
        "AttributeError: 'Foo' object has no attribute 'bar'" -> "AttributeError: 'X' object has no attribute 'X'"
    """
    if status == Status.PASS:
        raise ValueError("error_type: a passing test has no error type")
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    if status == Status.CRASHED:
        return _crash_type(message)
    if status not in (Status.EXCEPTION, Status.NOT_RUN):
        raise ValueError(f"error_type: unknown status {status!r}; expected one of {Status.ALL}")
    lines = message.strip().splitlines()
    first = lines[0].strip() if lines else ""
    first = first.removeprefix(LOAD_FAILURE_PREFIX)
    if not first:
        return "NotRun" if status == Status.NOT_RUN else "UnknownError"
    m = _HEAD.fullmatch(first)
    if m is None:  # not "ClassName: ...": normalise the whole text
        return _truncate(_normalise_detail(first, keep_types=False), max_len)
    cls, detail = m.group(1), m.group(2) or ""
    detail = _normalise_detail(detail, keep_types=cls in _TYPE_KEEPING_ERRORS)
    return _truncate(f"{cls}: {detail}" if detail else cls, max_len)


def sample_error_type(record: Mapping, *, max_len: int = 80) -> str | None:
    """Error type of a sample record: None when it passed, else the type of its first real failure.

    The first failure whose status is not "not_run" decides (later tests were often skipped by
    fail-fast); when every failure is "not_run" (e.g. the program did not load) the first one does.
    A failing record without failures is "UnknownError".
    """
    if record.get("status") == Status.PASS:
        return None
    failures = record.get("failures") or []
    if not isinstance(failures, list) or not all(isinstance(f, Mapping) for f in failures):
        raise ValueError(f"task {record.get('task_id')!r}: field 'failures' must be a list of objects")
    if not failures:
        return "UnknownError"
    first = next((f for f in failures if f.get("status") != Status.NOT_RUN), failures[0])
    return error_type(str(first.get("message") or ""), first.get("status", Status.EXCEPTION), max_len=max_len)


def error_table(records: Iterable[Mapping], *, max_len: int = 80) -> list[tuple[str, int, float]]:
    """(error type, count, share of failing samples), most frequent first, then by name.

    One type per failing sample record (see `sample_error_type`); passing records are skipped, so
    the shares sum to 1 whenever something failed.
    """
    counts: dict[str, int] = {}
    for rec in records:
        t = sample_error_type(rec, max_len=max_len)
        if t is not None:
            counts[t] = counts.get(t, 0) + 1
    total = sum(counts.values())
    return [(t, c, c / total) for t, c in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))]


def missing_module_counts(records: Iterable[Mapping]) -> dict:
    """How many failing samples could not import a module that the environment lacks altogether
    (record field `missing_modules`), in all and per module, most frequent first:
    {"samples": 12, "modules": {"pandas": 9, "sklearn": 3}}. A sample missing two modules counts
    once in "samples" and once under each module."""
    per: dict[str, int] = {}
    samples = 0
    for rec in records:
        names = rec.get("missing_modules") or []
        if rec.get("status") == Status.PASS or not names:
            continue
        samples += 1
        for name in names:
            per[name] = per.get(name, 0) + 1
    return {"samples": samples, "modules": dict(sorted(per.items(), key=lambda kv: (-kv[1], kv[0])))}


def format_missing_modules(counts: Mapping) -> str:
    """`12 samples failed on modules not installed here: pandas (9), sklearn (3)`."""
    n = counts["samples"]
    listed = ", ".join(f"{name} ({k})" for name, k in counts["modules"].items())
    return f"{n} sample{'s' if n != 1 else ''} failed on modules not installed here: {listed}"
