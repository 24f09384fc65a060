"""focalpo's own problem format: one JSON object per line, tests as `test_to_dict` dicts.

    {"task_id": "toy/0", "prompt": "...", "entry_point": "add",            # entry_point optional
     "canonical_solution": "def add(a, b): ...",                          # optional
     "tests": [{"kind": "call", "name": "t0", "entry_point": "add", "args": [1, 2], "expected": 3}],
     "instruct_prompt": null, "code_prefix": "", "meta": {}}              # all optional

`tests` is a list (one split, "base") or an object `{"split": [test, ...]}`. Without `code_prefix`
the canonical solution is taken to be a whole program. JSON has no tuples: call-test `args` come
back as a tuple of JSON values (nested tuples become lists). `dump_jsonl` writes the format.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from focalpo.problems.oracles import check_oracle_name
from focalpo.problems.rows import Row, iter_rows
from focalpo.problems.types import Problem
from focalpo.sandbox.types import CallTest, TestCase, test_from_dict, test_to_dict

DEFAULT_SPLIT = "base"


def load_jsonl(path: str | os.PathLike) -> list[Problem]:
    """All problems of a focalpo JSONL file, in file order; task ids must be unique."""
    problems, seen = [], {}
    for row in iter_rows(path):
        problem = _problem(row)
        if problem.task_id in seen:
            raise row.error("task_id", f"duplicate {problem.task_id!r} (first at {seen[problem.task_id]})")
        seen[problem.task_id] = row.where or f"line {row.line}"
        problems.append(problem)
    return problems


def _problem(row: Row) -> Problem:
    return Problem(
        task_id=row.text("task_id"),
        prompt=row.text("prompt"),
        entry_point=row.text("entry_point", None),
        canonical_solution=row.text("canonical_solution", ""),
        tests=_splits(row),
        instruct_prompt=row.text("instruct_prompt", None),
        meta=row.get("meta", dict, {}),
        code_prefix=row.text("code_prefix", ""),
    )


def _splits(row: Row) -> dict[str, list[TestCase]]:
    raw = row.get("tests", (list, dict))
    splits = {DEFAULT_SPLIT: raw} if isinstance(raw, list) else raw
    out: dict[str, list[TestCase]] = {}
    for split, tests in splits.items():
        if not isinstance(tests, list):
            raise row.error("tests", f"split {split!r}: expected an array of tests, got {type(tests).__name__}")
        out[split] = [_test(row, split, i, d) for i, d in enumerate(tests)]
    counts = Counter(t.name for ts in out.values() for t in ts)
    dupes = sorted(n for n, c in counts.items() if c > 1)
    if dupes:
        raise row.error("tests", f"duplicate test names {dupes[:5]}")
    return out


def _test(row: Row, split: str, i: int, d: object) -> TestCase:
    where = f"split {split!r} test {i}"
    if not isinstance(d, dict):
        raise row.error("tests", f"{where}: expected an object, got {type(d).__name__}")
    try:
        test = test_from_dict(d)
        if isinstance(test, CallTest):
            check_oracle_name(test.oracle)
    except ValueError as e:
        raise row.error("tests", f"{where}: {e}") from None
    return test


def problem_to_dict(problem: Problem) -> dict:
    """JSON-friendly dict of a problem (the inverse of the loader, up to tuples -> lists)."""
    return {
        "task_id": problem.task_id,
        "prompt": problem.prompt,
        "entry_point": problem.entry_point,
        "canonical_solution": problem.canonical_solution,
        "tests": {split: [test_to_dict(t) for t in tests] for split, tests in problem.tests.items()},
        "instruct_prompt": problem.instruct_prompt,
        "meta": problem.meta,
        "code_prefix": problem.code_prefix,
    }


def dump_jsonl(problems: list[Problem], path: str | os.PathLike) -> None:
    """Write problems as focalpo JSONL (atomically: a temporary file, then a rename)."""
    p = Path(path)
    tmp = p.with_name(f"{p.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for problem in problems:
            f.write(json.dumps(problem_to_dict(problem), ensure_ascii=False) + "\n")
    os.replace(tmp, p)
