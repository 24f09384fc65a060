"""Loader for LiveCodeBench code-generation files (`code_generation_lite` row format).

Rows carry `question_id`, `question_title`, `question_content`, `starter_code`, `platform`,
`difficulty`, `contest_date`, `metadata` (JSON string, `func_name` for functional tasks) and two
JSON strings of test cases `{input, output, testtype}`. `private_test_cases` may instead be
base64(zlib(pickle(json string))); the pickle is decoded by an unpickler that resolves no global at
all, so it can only yield builtin values (a str here), never run code.

- `testtype == "stdin"`      -> `StdioTest(stdin=input, expected_stdout=output)`
- `testtype == "functional"` -> `CallTest(entry_point=func_name, args=<one JSON value per input
                                line>, expected=json(output))`

LeetCode tasks put the function in `class Solution:`; such problems get
`meta["leetcode_class"] = "Solution"` and `Problem.program_for` appends a module-level
`def func_name(*args): return Solution().func_name(*args)`, so call tests stay plain calls.
Test names are "public/i" and "private/i", all in split "base". Answers are whole programs
(`code_prefix = ""`); there is no canonical solution.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import pickle
import re
import zlib
from typing import Any

from focalpo.problems.rows import Row, iter_rows
from focalpo.problems.types import Problem
from focalpo.sandbox.types import CallTest, StdioTest, TestCase

SPLIT = "base"
_CLASS_RE = re.compile(r"^class\s+([A-Za-z_]\w*)\s*[:(]", re.MULTILINE)


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def decode_private_tests(blob: str) -> Any:
    """Decode a private-test blob: plain JSON, or base64(zlib(pickle(json string)))."""
    try:
        return json.loads(blob)
    except json.JSONDecodeError:
        pass
    raw = zlib.decompress(base64.b64decode(blob.encode("ascii"), validate=True))
    inner = _NoGlobalsUnpickler(io.BytesIO(raw)).load()
    if not isinstance(inner, (str, bytes)):
        raise ValueError(f"the pickle holds a {type(inner).__name__}, expected a JSON string")
    return json.loads(inner)


def load_livecodebench(path: str | os.PathLike) -> list[Problem]:
    """All problems of a LiveCodeBench code-generation JSONL file, in file order."""
    return [_problem(row) for row in iter_rows(path)]


def _problem(row: Row) -> Problem:
    starter = row.text("starter_code", "")
    metadata = _json_field(row, "metadata", {}) if row.data.get("metadata") else {}
    if not isinstance(metadata, dict):
        raise row.error("metadata", f"expected a JSON object, got {type(metadata).__name__}")
    func = metadata.get("func_name")
    public = _cases(row, "public_test_cases", _json_field(row, "public_test_cases", []))
    private = _cases(row, "private_test_cases", _private(row))
    tests = _tests(row, "public", public, func) + _tests(row, "private", private, func)
    meta = {k: row.data.get(k) for k in ("question_title", "platform", "difficulty", "contest_id", "contest_date")}
    meta.update(starter_code=starter, metadata=metadata)
    match = _CLASS_RE.search(starter)
    if func and match:
        meta["leetcode_class"] = match.group(1)
    return Problem(
        task_id=str(row.get("question_id", (str, int))),
        prompt=row.text("question_content"),
        entry_point=func,
        canonical_solution="",
        tests={SPLIT: tests},
        meta=meta,
    )


def _json_field(row: Row, field: str, default: Any) -> Any:
    value = row.get(field, (str, list, dict), default)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise row.error(field, f"invalid JSON string: {e.msg}") from None


def _private(row: Row) -> Any:
    value = row.get("private_test_cases", (str, list), [])
    if not isinstance(value, str):
        return value
    try:
        return decode_private_tests(value)
    except (ValueError, binascii.Error, zlib.error, pickle.UnpicklingError, EOFError) as e:
        raise row.error("private_test_cases", f"neither JSON nor base64(zlib(pickle)): {e}") from None


def _cases(row: Row, field: str, cases: Any) -> list[dict]:
    if not isinstance(cases, list):
        raise row.error(field, f"expected a list of test cases, got {type(cases).__name__}")
    for i, c in enumerate(cases):
        if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in ("input", "output", "testtype")):
            raise row.error(field, f"case {i}: expected {{input, output, testtype}} strings")
        if c["testtype"] not in ("stdin", "functional"):
            raise row.error(field, f"case {i}: unknown testtype {c['testtype']!r}")
    return cases


def _tests(row: Row, prefix: str, cases: list[dict], func: str | None) -> list[TestCase]:
    field = f"{prefix}_test_cases"
    tests: list[TestCase] = []
    for i, c in enumerate(cases):
        name = f"{prefix}/{i}"
        if c["testtype"] == "stdin":
            tests.append(StdioTest(name=name, stdin=c["input"], expected_stdout=c["output"]))
            continue
        if not func:
            raise row.error("metadata", f"{field} case {i} is functional but metadata has no 'func_name'")
        try:
            args = tuple(json.loads(line) for line in c["input"].split("\n") if line.strip())
            expected = json.loads(c["output"])
        except json.JSONDecodeError as e:
            raise row.error(field, f"case {i}: input lines and output must be JSON values: {e.msg}") from None
        tests.append(CallTest(name=name, entry_point=func, args=args, expected=expected))
    return tests
