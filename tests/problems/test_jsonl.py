"""Tests of focalpo.problems.jsonl: focalpo's own problem format, round trip and bad rows.

Run: .venv/bin/python -m pytest tests/problems/test_jsonl.py -q
"""

from __future__ import annotations

import pytest
from problems_helpers import write_jsonl

from focalpo.problems import Problem, ProblemFormatError, dump_jsonl, load_benchmark, load_jsonl
from focalpo.sandbox.types import NO_EXPECTED, AssertTest, CallTest, StdioTest, UnittestTest


def _toy_problems() -> list[Problem]:
    return [
        Problem(
            task_id="toy/0", prompt="Add two numbers.", entry_point="add",
            canonical_solution="def add(a, b):\n    return a + b\n",
            tests={
                "base": [CallTest("c0", "add", (1, 2), 3), CallTest("c1", "add", ([1], [2]), [1, 2], oracle="set_eq")],
                "extra": [AssertTest("a0", "assert add(2, 2) == 4"), StdioTest("s0", "", ""),
                          UnittestTest("u0", "import unittest\n", "T.test_x", time_limit=2.0)],
            },
            meta={"source": "unit test"},
        ),
        Problem(task_id="toy/1", prompt="p", entry_point=None, canonical_solution="",
                tests={"base": [CallTest("x", "f", (), NO_EXPECTED)]}),
    ]


def test_jsonl_roundtrip(tmp_path):
    path = tmp_path / "toy.jsonl"
    dump_jsonl(_toy_problems(), path)
    assert load_jsonl(path) == _toy_problems()
    assert load_benchmark("jsonl", path) == _toy_problems()
    assert not list(tmp_path.glob("*.tmp"))


def test_jsonl_list_tests_are_split_base(tmp_path):
    row = {"task_id": "a", "prompt": "p", "tests": [{"kind": "assert", "name": "t", "code": "assert 1"}]}
    (p,) = load_jsonl(write_jsonl(tmp_path / "a.jsonl", [row]))
    assert p.tests == {"base": [AssertTest("t", "assert 1")]} and p.code_prefix == "" and p.meta == {}


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"task_id": "a", "prompt": "p", "tests": [{"kind": "nope", "name": "t"}]}], r":1: field 'tests': split 'base' test 0: field 'kind'"),
        ([{"task_id": "a", "prompt": "p", "tests": {"x": [{"kind": "call", "name": "t", "entry_point": "f", "args": [], "oracle": "bogus"}]}}],
         r":1: field 'tests': split 'x' test 0: unknown oracle 'bogus'"),
        ([{"task_id": "a", "prompt": "p", "tests": []}, {"task_id": "a", "prompt": "p", "tests": []}], r":2: field 'task_id': duplicate 'a' \(first at line 1\)"),
        ([{"task_id": "a", "prompt": "p", "tests": [{"kind": "assert", "name": "t", "code": ""}] * 2}], r":1: field 'tests': duplicate test names \['t'\]"),
        ([{"task_id": "a", "prompt": "p", "tests": "x"}], r":1: field 'tests': expected array or object, got str"),
    ],
)
def test_jsonl_bad_rows(tmp_path, rows, message):
    with pytest.raises(ProblemFormatError, match=message):
        load_jsonl(write_jsonl(tmp_path / "g.jsonl", rows))
