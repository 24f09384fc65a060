"""Tests of focalpo.problems.bigcodebench: one UnittestTest per test method, complete/instruct prompts, libs.

The benchmark files are read from ../shared/data beside the checkout, or from $FOCALPO_DATA_DIR
(never copied into the repository); tests that need them are skipped when that folder is absent.
Run: .venv/bin/python -m pytest tests/problems/test_bigcodebench.py -q
"""

from __future__ import annotations

from collections import Counter

import pytest
from problems_helpers import BCB, bcb_row, write_jsonl, needs_data

from focalpo.problems import load_benchmark, load_bigcodebench
from focalpo.sandbox.types import UnittestTest


# ----------------------------------------------------------------------------------------------
# BigCodeBench


@needs_data
def test_bigcodebench_methods_prompts_and_libs(bigcodebench):
    p = bigcodebench["BigCodeBench/0"]
    t = p.tests["base"][0]
    assert isinstance(t, UnittestTest)
    assert t.name == t.method == "TestCases.test_default_numbers" and t.module.startswith("import unittest")
    assert sorted(p.meta["libs"]) == ["itertools", "random"]
    assert p.prompt == p.meta["complete_prompt"] and p.instruct_prompt.startswith("Calculates the average")
    assert p.reference_program() == p.meta["complete_prompt"] + p.canonical_solution
    # Duplicated method names count once (only the last definition exists at run time).
    assert Counter(t.name for t in bigcodebench["BigCodeBench/804"].tests["base"]).most_common(1)[0][1] == 1
    # `class TestCases(TestCase)` after `from unittest import TestCase`.
    assert [t.name for t in bigcodebench["BigCodeBench/719"].tests["base"]] == [f"TestCases.test_{i}" for i in range(1, 6)]


@needs_data
def test_bigcodebench_instruct_and_alias():
    inst = load_benchmark("bigcodebench-instruct")
    assert inst[0].prompt == inst[0].instruct_prompt and inst[0].meta["prompt_kind"] == "instruct"
    assert [p.task_id for p in load_benchmark("bigcodebench-complete")] == [p.task_id for p in inst]
    with pytest.raises(ValueError, match="prompt must be one of"):
        load_bigcodebench(BCB, prompt="chat")


def test_bigcodebench_inherited_test_methods(tmp_path):
    test = (
        "import unittest\nclass Base(unittest.TestCase):\n    def test_a(self): pass\n    def helper(self): pass\n"
        "class More(Base):\n    def test_b(self): pass\nclass Mock:\n    def test_not_a_test(self): pass\n"
    )
    f = write_jsonl(tmp_path / "bcb.jsonl", [bcb_row(test)])
    names = [t.name for t in load_bigcodebench(f)[0].tests["base"]]
    assert names == ["Base.test_a", "More.test_a", "More.test_b"]
