"""Loaders for HumanEval+ and MBPP+ (evalplus releases): input lists become `CallTest`s.

Each input of `base_input` / `plus_input` becomes `CallTest(name="base/3", entry_point, args,
expected=NO_EXPECTED, atol=row["atol"], oracle=...)` in split "base" / "plus". Expected outputs are
not in the files: evalplus obtains them by running the canonical solution, and so does
`focalpo.problems.groundtruth.fill_expected` (which also sets each test's time limit).
Semantics follow evalplus 0.3.1: `mbpp_inputs` rebuilds MBPP+'s tuples/sets/complex numbers, and
special oracles are attached by entry point (`find_zero` -> "poly_root"; MBPP+ table).

Run: `load_humaneval_plus("../shared/data/HumanEvalPlus-v0.1.10.jsonl.gz")`.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

from focalpo.datasets_io import Source, source_kind
from focalpo.problems.mbpp_inputs import HUMANEVAL_ORACLES, MBPP_ORACLES, deserialize_mbpp_input
from focalpo.problems.rows import Row, iter_rows, rows_without
from focalpo.problems.types import Problem
from focalpo.sandbox.types import NO_EXPECTED, CallTest

SPLITS = ("base", "plus")
Deserialize = Callable[[str, list], tuple]


def load_humaneval_plus(path: str | os.PathLike, splits: Sequence[str] = SPLITS) -> list[Problem]:
    """All problems of a HumanEval+ JSONL file, in file order, with the test `splits` asked for
    (HumanEval+ has 125k plus tests: a base-only evaluation need not build them)."""
    keep = _check_splits(splits)
    return [_problem(row, HUMANEVAL_ORACLES, _plain_args, ("test",), keep) for row in _rows(path, keep)]


def load_mbpp_plus(path: str | os.PathLike, splits: Sequence[str] = SPLITS) -> list[Problem]:
    """All problems of an MBPP+ JSONL file, in file order, with the test `splits` asked for."""
    keep = _check_splits(splits)
    return [_problem(row, MBPP_ORACLES, deserialize_mbpp_input, ("assertion",), keep) for row in _rows(path, keep)]


def _rows(path: str | os.PathLike, keep: tuple[str, ...]):
    """The file's rows; without the input lists of splits not asked for, which are most of the
    parsing (HumanEval+'s plus inputs), from a cache after the first such load."""
    drop = tuple(f"{s}_input" for s in SPLITS if s not in keep)
    plain_file = not isinstance(path, Source) and source_kind(path) == "jsonl"  # the cache is keyed by a file's bytes
    return rows_without(path, drop) if drop and plain_file else iter_rows(path)


def _check_splits(splits: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown test split(s) {unknown}; evalplus benchmarks have {list(SPLITS)}")
    return tuple(s for s in SPLITS if s in splits)


def _plain_args(task_id: str, inp: list) -> tuple:
    return tuple(inp)


def _problem(
    row: Row, oracles: dict[str, str], deserialize: Deserialize, extra: tuple[str, ...], splits: tuple[str, ...]
) -> Problem:
    task_id, prompt, entry_point = row.text("task_id"), row.text("prompt"), row.text("entry_point")
    atol = row.number("atol")
    oracle = oracles.get(entry_point)
    tests = {
        split: _call_tests(row, f"{split}_input", split, task_id, entry_point, atol, oracle, deserialize)
        for split in splits
    }
    meta = {"atol": atol, "contract": row.text("contract", "")}
    meta.update({k: row.text(k) for k in extra if k in row.data})
    return Problem(
        task_id=task_id,
        prompt=prompt,
        entry_point=entry_point,
        canonical_solution=row.text("canonical_solution"),
        tests=tests,
        meta=meta,
        code_prefix=prompt,
    )


def _call_tests(
    row: Row, field: str, split: str, task_id: str, entry_point: str, atol: float,
    oracle: str | None, deserialize: Deserialize,
) -> list[CallTest]:
    inputs = row.get(field, (list, dict, str))
    if isinstance(inputs, str):  # some exports store the input list as a JSON string
        try:
            inputs = json.loads(inputs)
        except json.JSONDecodeError as e:
            raise row.error(field, f"invalid JSON string: {e.msg}") from None
        if not isinstance(inputs, list):
            raise row.error(field, f"expected a JSON array of argument lists, got {type(inputs).__name__}")
    if isinstance(inputs, dict):
        # MBPP+ v0.2.0 stores Mbpp/793's empty plus_input as `{}`; evalplus iterates it as no input.
        if inputs:
            raise row.error(field, "expected an array of argument lists, got a non-empty object")
        inputs = []
    tests = []
    for i, inp in enumerate(inputs):
        if not isinstance(inp, list):
            raise row.error(field, f"input {i}: expected an argument list, got {type(inp).__name__}")
        try:
            args = deserialize(task_id, inp)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as e:
            raise row.error(field, f"input {i}: cannot deserialise {inp!r:.80}: {type(e).__name__}: {e}") from None
        tests.append(CallTest(f"{split}/{i}", entry_point, args, NO_EXPECTED, atol, oracle))
    return tests
