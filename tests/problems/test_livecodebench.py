"""Tests of focalpo.problems.livecodebench: stdin and functional (LeetCode) tests, private tests unpickled without globals.

The LiveCodeBench rows are synthetic: no LCB data is shared.

Run: .venv/bin/python -m pytest tests/problems/test_livecodebench.py -q
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib

import pytest
from problems_helpers import write_jsonl

from focalpo.problems import ProblemFormatError, decode_private_tests, load_livecodebench
from focalpo.sandbox.types import StdioTest


def _compress(cases: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


def _lcb_rows() -> list[dict]:
    stdin_case = {"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}
    return [
        {
            "question_id": "abc001_a", "question_title": "Sum", "question_content": "Print the sum.",
            "platform": "atcoder", "difficulty": "easy", "contest_date": "2024-01-01T00:00:00", "starter_code": "",
            "public_test_cases": json.dumps([stdin_case]),
            "private_test_cases": _compress([{"input": "1\n5\n", "output": "5\n", "testtype": "stdin"}] * 2),
            "metadata": "{}",
        },
        {
            "question_id": "3000", "question_title": "Two Sum", "question_content": "Return indices.",
            "platform": "leetcode", "difficulty": "easy", "contest_date": "2024-01-02T00:00:00",
            "starter_code": "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        ",
            "public_test_cases": json.dumps([{"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]", "testtype": "functional"}]),
            "private_test_cases": json.dumps([{"input": "[3, 3]\n6", "output": "[0, 1]", "testtype": "functional"}]),
            "metadata": json.dumps({"func_name": "twoSum"}),
        },
    ]


def test_livecodebench_stdin_and_compressed_private_tests(tmp_path):
    f = write_jsonl(tmp_path / "lcb.jsonl", _lcb_rows())
    atcoder, leetcode = load_livecodebench(f)
    assert atcoder.task_id == "abc001_a" and atcoder.entry_point is None
    assert atcoder.tests == {"base": [
        StdioTest("public/0", "3\n1 2 3\n", "6\n"),
        StdioTest("private/0", "1\n5\n", "5\n"),
        StdioTest("private/1", "1\n5\n", "5\n"),
    ]}
    assert atcoder.program_for("print(1)") == "print(1)"
    with pytest.raises(ValueError, match="no canonical solution"):
        atcoder.reference_program()


def test_livecodebench_functional_leetcode_wrapper(tmp_path):
    _, p = load_livecodebench(write_jsonl(tmp_path / "lcb.jsonl", _lcb_rows()))
    assert p.entry_point == "twoSum" and p.meta["leetcode_class"] == "Solution"
    assert [(t.name, t.args, t.expected) for t in p.tests["base"]] == [
        ("public/0", ([2, 7, 11, 15], 9), [0, 1]),
        ("private/0", ([3, 3], 6), [0, 1]),
    ]
    solution = (
        "class Solution:\n    def twoSum(self, nums, target):\n"
        "        seen = {}\n        for i, x in enumerate(nums):\n"
        "            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n"
    )
    ns: dict = {}
    exec(p.program_for(solution), ns)  # the module-level wrapper makes call tests plain calls
    assert [ns["twoSum"](*t.args) == t.expected for t in p.tests["base"]] == [True, True]


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_livecodebench_private_pickle_allows_no_globals(tmp_path):
    evil = base64.b64encode(zlib.compress(pickle.dumps(_Evil()))).decode()
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        decode_private_tests(evil)
    row = {**_lcb_rows()[0], "private_test_cases": evil}
    with pytest.raises(ProblemFormatError, match=r"lcb\.jsonl:1: field 'private_test_cases': neither JSON"):
        load_livecodebench(write_jsonl(tmp_path / "lcb.jsonl", [row]))
    row = {**_lcb_rows()[1], "metadata": "{}"}
    with pytest.raises(ProblemFormatError, match=r":1: field 'metadata': .*no 'func_name'"):
        load_livecodebench(write_jsonl(tmp_path / "lcb.jsonl", [row]))


def test_livecodebench_from_a_save_to_disk_dataset_dict_with_timestamps(tmp_path):
    """The Hub's LCB rows as a DatasetDict on disk, contest_date an Arrow timestamp: same problems,
    windows by date, bad rows named by split and index."""
    import datetime

    from datasets import Dataset, DatasetDict

    from focalpo.datasets_io import Source
    from focalpo.problems import load_benchmark

    rows = _lcb_rows()
    for r, day in zip(rows, (1, 2)):
        r["contest_date"] = datetime.datetime(2024, 1, day)
    DatasetDict({"test": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "lcb"))
    want = load_livecodebench(write_jsonl(tmp_path / "lcb.jsonl", _lcb_rows()))
    got = load_benchmark("livecodebench", Source(str(tmp_path / "lcb"), split="test"))
    assert [(p.task_id, p.tests, p.meta["contest_date"]) for p in got] == [
        (p.task_id, p.tests, p.meta["contest_date"]) for p in want]
    assert [p.task_id for p in load_benchmark("livecodebench", str(tmp_path / "lcb"), since="2024-01-02")] == ["3000"]
    bad = [dict(rows[0]), {**rows[1], "public_test_cases": "not json"}]
    DatasetDict({"test": Dataset.from_list(bad)}).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(ProblemFormatError, match=rf"{tmp_path / 'bad'}:test\[1\]: field 'public_test_cases': invalid JSON"):
        load_livecodebench(str(tmp_path / "bad"))
