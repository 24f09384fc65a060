"""Error types of failing samples, and the modules an environment lacks.

    >>> error_type("KeyError: 'abc'")
    "KeyError: 'X'"

- `error_type`, `sample_error_type`, `error_table`: Target-DPO-style error analysis (arXiv
  2503.02783): each failing sample (a sample record of `focalpo.eval.passk`) is reduced to one
  normalised error type and the types counted.
- `missing_module_counts`, `format_missing_modules`: the failing samples that could not import a
  module this environment lacks (record field `missing_modules`), so that a report says where
  the score measures the environment rather than the model.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable, Mapping

from focalpo.sandbox.types import Status

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
# focalpo.sandbox.attempt prefixes this to every verdict of a program that raised while loading.
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
