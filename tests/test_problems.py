"""Tests of the problem layer: benchmark counts, deserialisation, oracles, bad rows, LCB, JSONL.

The benchmark files are read from ../shared/data (never copied into the repository); tests that
need them are skipped when that folder is absent. Run: `pytest tests/test_problems.py -q`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import pickle
import zlib
from collections import Counter
from pathlib import Path

import pytest

from focalpo.problems import (
    Problem,
    ProblemFormatError,
    benchmark_path,
    dataset_hash,
    decode_private_tests,
    deserialize_mbpp_input,
    dump_jsonl,
    load_benchmark,
    load_bigcodebench,
    load_humaneval,
    load_humaneval_plus,
    load_jsonl,
    load_livecodebench,
    load_mbpp_plus,
)
from focalpo.problems import registry
from focalpo.sandbox.types import NO_EXPECTED, AssertTest, CallTest, StdioTest, UnittestTest

# the shipped data beside the checkout, or wherever $FOCALPO_DATA_DIR says (a clone elsewhere)
DATA = Path(os.environ.get("FOCALPO_DATA_DIR") or Path(__file__).parents[1] / ".." / "shared" / "data")
HE, HEP = DATA / "HumanEval.jsonl.gz", DATA / "HumanEvalPlus-v0.1.10.jsonl.gz"
MBPP, BCB = DATA / "MbppPlus-v0.2.0.jsonl.gz", DATA / "BigCodeBench-v0.1.0.jsonl.gz"
needs_data = pytest.mark.skipif(not HEP.is_file(), reason=f"benchmark data not found in {DATA}")


def _by_id(problems: list[Problem]) -> dict[str, Problem]:
    return {p.task_id: p for p in problems}


def _split_sizes(problems: list[Problem]) -> dict[str, int]:
    c: Counter = Counter()
    for p in problems:
        c.update(p.n_tests())
    return dict(c)


@pytest.fixture(scope="module")
def humaneval():
    return _by_id(load_humaneval(HE))


@pytest.fixture(scope="module")
def humaneval_plus():
    return _by_id(load_humaneval_plus(HEP))


@pytest.fixture(scope="module")
def mbpp_plus():
    return _by_id(load_mbpp_plus(MBPP))


@pytest.fixture(scope="module")
def bigcodebench():
    return _by_id(load_bigcodebench(BCB))


# ----------------------------------------------------------------------------------------------
# Counts and file order


@needs_data
def test_counts_per_file(humaneval, humaneval_plus, mbpp_plus, bigcodebench):
    assert len(humaneval) == 164
    assert len(humaneval_plus) == 164
    assert _split_sizes(list(humaneval_plus.values())) == {"base": 1570, "plus": 123739}
    assert len(mbpp_plus) == 378
    assert _split_sizes(list(mbpp_plus.values())) == {"base": 1174, "plus": 39841}
    assert len(bigcodebench) == 1140
    # Test methods unittest would run (BigCodeBench/90, /392, /804 define some methods twice).
    assert _split_sizes(list(bigcodebench.values())) == {"base": 6423}


@needs_data
def test_file_order_is_kept(humaneval_plus, mbpp_plus):
    assert list(humaneval_plus)[:3] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert list(humaneval_plus)[-1] == "HumanEval/163"
    assert list(mbpp_plus)[:2] == ["Mbpp/2", "Mbpp/3"]


# ----------------------------------------------------------------------------------------------
# HumanEval: check(candidate) -> AssertTests


@needs_data
def test_humaneval_asserts_split_with_setup(humaneval):
    p = humaneval["HumanEval/0"]
    tests = p.tests["base"]
    assert [t.name for t in tests] == [f"base/{i}" for i in range(7)]
    assert all(isinstance(t, AssertTest) for t in tests)
    assert tests[0].code == "assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True"
    assert tests[0].setup.startswith("METADATA = {")
    assert tests[0].setup.endswith("candidate = has_close_elements\n")
    assert p.reference_program() == p.prompt + p.canonical_solution


@needs_data
def test_humaneval_whole_check_only_when_body_is_not_asserts(humaneval):
    whole = sorted(tid for tid, p in humaneval.items() if p.tests["base"][0].name == "base/check")
    assert whole == ["HumanEval/151", "HumanEval/32", "HumanEval/38", "HumanEval/44", "HumanEval/50", "HumanEval/53"]
    t = humaneval["HumanEval/32"].tests["base"][0]
    assert t.code == "check(find_zero)" and "def check(candidate):" in t.setup
    # HumanEval/129's check has a stray bare `print`: still split, one test per assert.
    assert len(humaneval["HumanEval/129"].tests["base"]) == 11
    assert sum(len(p.tests["base"]) for p in humaneval.values()) == 1164


@needs_data
def test_humaneval_reference_passes_and_a_wrong_program_fails(humaneval):
    """In-process run of the trusted canonical code: every assert holds; `return None` breaks some."""
    for p in list(humaneval.values())[:40]:
        for t in p.tests["base"]:
            ns: dict = {}
            exec(p.reference_program(), ns)
            exec(t.setup, ns)
            exec(t.code, ns)
        wrong = p.prompt + "    return None\n"
        failures = 0
        for t in p.tests["base"]:
            ns = {}
            exec(wrong, ns)
            exec(t.setup, ns)
            try:
                exec(t.code, ns)
            except Exception:  # noqa: BLE001 - AssertionError, TypeError ...
                failures += 1
        assert failures >= 1, p.task_id


@needs_data
def test_humaneval_assert_tests_in_the_sandbox(humaneval):
    """The real executor: every reference passes all its tests; `return None` fails in every task."""
    from focalpo.sandbox import ExecPool, Job

    problems = list(humaneval.values())
    with ExecPool() as pool:
        ref = pool.map([Job(p.reference_program(), p.all_tests()) for p in problems])
        wrong = pool.map([Job(p.prompt + "    return None\n", p.all_tests()) for p in problems])
    assert [(p.task_id, v.name, v.message) for p, r in zip(problems, ref) for v in r.verdicts if not v.passed] == []
    assert sum(len(r.verdicts) for r in ref) == 1164
    assert all(not r.passed for r in wrong)


# ----------------------------------------------------------------------------------------------
# HumanEval+ / MBPP+: call tests, deserialisation, oracles


@needs_data
def test_humaneval_plus_call_tests(humaneval_plus):
    p = humaneval_plus["HumanEval/0"]
    t = p.tests["base"][0]
    assert isinstance(t, CallTest)
    assert (t.name, t.entry_point, t.expected, t.atol, t.oracle) == ("base/0", "has_close_elements", NO_EXPECTED, 0.0, None)
    assert t.args == ([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)
    assert p.tests["plus"][17].name == "plus/17"
    assert p.reference_program() == p.prompt + p.canonical_solution
    assert "$_CONTRACT_$" in p.meta["contract"]


@needs_data
def test_splits_keep_only_the_asked_test_splits(humaneval_plus, humaneval):
    base_only = _by_id(load_benchmark("humaneval+", HEP, splits=["base"]))
    assert {k for p in base_only.values() for k in p.tests} == {"base"}
    assert all(base_only[t].tests["base"] == p.tests["base"] for t, p in humaneval_plus.items())
    assert _by_id(load_mbpp_plus(MBPP, splits=["plus"]))["Mbpp/2"].tests.keys() == {"plus"}
    # loaders without a `splits` argument are filtered after loading
    he = _by_id(load_benchmark("humaneval", HE, splits=["base"]))
    assert he["HumanEval/0"].tests == humaneval["HumanEval/0"].tests
    with pytest.raises(ValueError, match="unknown test split"):
        load_humaneval_plus(HEP, splits=["extra"])


def test_a_split_left_out_is_parsed_once_then_read_from_the_rows_cache(tmp_path, monkeypatch):
    """A base-only load parses the whole file once and caches the rows without `plus_input`
    (keyed by the file's hash); later base-only loads read the cache, not the file. Errors still
    name the original file and line; a corrupt or unwritable cache only costs the parse."""
    import focalpo.problems.rows as rows_mod

    monkeypatch.setenv("FOCALPO_CACHE", str(tmp_path / "cache"))
    row = {"task_id": "T/0", "prompt": "def f(x):\n", "entry_point": "f", "canonical_solution": "    return x\n",
           "test": "", "contract": "", "atol": 0, "base_input": [[1], [2]], "plus_input": [[3]] * 1000}  # fmt: skip
    bad = {**row, "task_id": "T/1", "entry_point": 7}
    data = tmp_path / "he.jsonl"
    data.write_text(json.dumps(row) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(ProblemFormatError, match=r"he\.jsonl:3: field 'entry_point'"):
        load_humaneval_plus(data, splits=["base"])
    (cache,) = (tmp_path / "cache" / "rows").iterdir()
    assert "plus_input" not in cache.read_text() and "base_input" in cache.read_text()
    calls = []
    real = rows_mod.iter_jsonl
    monkeypatch.setattr(rows_mod, "iter_jsonl", lambda p: calls.append(p) or real(p))
    with pytest.raises(ProblemFormatError, match=r"he\.jsonl:3: field 'entry_point'"):  # from the cache
        load_humaneval_plus(data, splits=["base"])
    assert calls == []
    data.write_text(json.dumps(row) + "\n")  # another file (hash): parsed again
    (p,) = load_humaneval_plus(data, splits=["base"])
    assert [t.args for t in p.tests["base"]] == [(1,), (2,)] and list(p.tests) == ["base"] and len(calls) == 1
    for cache in (tmp_path / "cache" / "rows").iterdir():
        cache.write_text("[not json")
    assert load_humaneval_plus(data, splits=["base"]) == [p] and len(calls) == 2  # rebuilt
    assert load_humaneval_plus(data, splits=["base"]) == [p] and len(calls) == 2
    assert len(load_humaneval_plus(data)[0].tests["plus"]) == 1000  # both splits: the file itself
    monkeypatch.setenv("FOCALPO_CACHE", str(data))  # a file, not a folder: nothing can be cached
    assert load_humaneval_plus(data, splits=["base"]) == [p]


@needs_data
def test_humaneval_plus_find_zero_is_the_only_poly_root(humaneval_plus):
    oracles = {(tid, t.oracle) for tid, p in humaneval_plus.items() for t in p.call_tests() if t.oracle}
    assert oracles == {("HumanEval/32", "poly_root")}
    t = humaneval_plus["HumanEval/32"].tests["base"][0]
    assert t.atol == 1e-4 and t.args == ([-10, -2],)
    atols = Counter(p.meta["atol"] for p in humaneval_plus.values())
    assert atols == {0.0: 161, 1e-6: 2, 1e-4: 1}


@needs_data
def test_mbpp_plus_complex_tuples_and_empty_plus(mbpp_plus):
    t124 = mbpp_plus["Mbpp/124"].tests["base"][0]
    assert t124.args == (0.0, 1j) and type(t124.args[0]) is float and type(t124.args[1]) is complex
    assert mbpp_plus["Mbpp/124"].tests["plus"][3].args == (1.0, complex(-0.0, -1.0))
    assert mbpp_plus["Mbpp/252"].tests["base"][0].args == (1 + 0j,)
    assert mbpp_plus["Mbpp/252"].tests["plus"][0].args == (1 + 2j,)
    assert mbpp_plus["Mbpp/2"].tests["base"][0].args == ((3, 4, 5, 6), (5, 7, 4, 10))
    # MBPP+ v0.2.0 stores Mbpp/793's plus_input as {}: no plus tests.
    assert mbpp_plus["Mbpp/793"].n_tests() == {"base": 3, "plus": 0}
    assert "Mbpp/115" not in mbpp_plus  # removed from MBPP+ v0.2.0


def test_mbpp_oracles_of_tasks_absent_from_v0_2_0(tmp_path):
    rows = [_he_row(task_id=f"Mbpp/{n}", entry_point=e) for n, e in [(164, "are_equivalent"), (295, "sum_div"), (3, "f")]]
    problems = load_mbpp_plus(_write_jsonl(tmp_path / "m.jsonl", rows))
    assert [p.tests["base"][0].oracle for p in problems] == ["always_true", "or_zero", None]


def test_mbpp_deserialisation_cases():
    # Mbpp/115: lists -> sets, and an empty list -> {} (evalplus 0.3.1 quirk: a dict).
    assert deserialize_mbpp_input("Mbpp/115", [[[1, 2], [], [3]]]) == ([{1, 2}, {}, {3}],)
    assert type(deserialize_mbpp_input("Mbpp/115", [[[]]])[0][0]) is dict
    assert deserialize_mbpp_input("Mbpp/124", ["1e-100", "(-0-1j)"]) == (1e-100, -1j)
    assert deserialize_mbpp_input("Mbpp/580", [[1, [2, [3]]], 4]) == ((1, (2, (3,))), 4)
    assert deserialize_mbpp_input("Mbpp/259", [[[1, 2]], [[3]]]) == (((1, 2),), ((3,),))
    assert deserialize_mbpp_input("Mbpp/278", [[1, [2, 3], 4]]) == ((1, (2, 3), 4),)
    assert deserialize_mbpp_input("Mbpp/722", [{"a": [1, 2]}, 5, 6]) == ({"a": (1, 2)}, 5, 6)
    assert deserialize_mbpp_input("Mbpp/75", [[[1, 2]], 3, 99]) == ([(1, 2)], 3)  # drops extras, as evalplus
    assert deserialize_mbpp_input("Mbpp/3", [[1, 2], 3]) == ([1, 2], 3)  # not listed: unchanged


@needs_data
def test_mbpp_plus_oracles_by_entry_point(mbpp_plus):
    oracle_of = {tid: {t.oracle for t in p.call_tests()} for tid, p in mbpp_plus.items()}
    assert all(len(o) <= 1 for o in oracle_of.values())  # one oracle per task
    assigned = {tid: o.pop() for tid, o in oracle_of.items() if o and None not in o}
    # v0.2.0 dropped Mbpp/164 (are_equivalent), /249 (intersection_array) and /295 (sum_div).
    assert Counter(assigned.values()) == {"set_eq": 7, "not_none": 3, "surface_area": 1, "digit_distance": 1}
    assert assigned["Mbpp/2"] == "set_eq" and assigned["Mbpp/769"] == "set_eq"
    assert assigned["Mbpp/581"] == "surface_area" and mbpp_plus["Mbpp/581"].tests["base"][0].atol == 0.0
    assert assigned["Mbpp/558"] == "digit_distance"
    not_none = sorted(mbpp_plus[t].entry_point for t, o in assigned.items() if o == "not_none")
    assert not_none == ["check_str", "text_match_three", "text_starta_endb"]


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
    f = _write_jsonl(tmp_path / "bcb.jsonl", [_bcb_row(test)])
    names = [t.name for t in load_bigcodebench(f)[0].tests["base"]]
    assert names == ["Base.test_a", "More.test_a", "More.test_b"]


# ----------------------------------------------------------------------------------------------
# Bad rows: file:line: field


def _write_jsonl(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def _he_row(**over) -> dict:
    row = {
        "task_id": "T/0", "prompt": "def f(x):\n", "entry_point": "f", "canonical_solution": "    return x\n",
        "test": "def check(candidate):\n    assert candidate(1) == 1\n",
        "contract": "", "base_input": [[1]], "plus_input": [[2], [3]], "atol": 0,
    }
    row.update(over)
    return row


def _bcb_row(test: str) -> dict:
    return {
        "task_id": "B/0", "complete_prompt": "def task_func():\n", "instruct_prompt": "do", "code_prompt": "def task_func():\n",
        "canonical_solution": "    return 1\n", "test": test, "entry_point": "task_func", "libs": "['os']",
    }


@pytest.mark.parametrize(
    "loader, rows, line, message",
    [
        (load_humaneval_plus, [_he_row(), "{not json"], 2, r"bad\.jsonl:2: invalid JSON"),
        (load_humaneval_plus, [_he_row(), _he_row(entry_point=None)], 2, r"bad\.jsonl:2: field 'entry_point': is null"),
        (load_humaneval_plus, [{k: v for k, v in _he_row().items() if k != "prompt"}], 1, r":1: field 'prompt': missing"),
        (load_humaneval_plus, [_he_row(atol="0")], 1, r":1: field 'atol': expected integer or number, got str"),
        (load_humaneval_plus, [_he_row(plus_input=[[1], 5])], 1, r":1: field 'plus_input': input 1: expected an argument list"),
        (load_humaneval_plus, [_he_row(base_input="[[1]")], 1, r":1: field 'base_input': invalid JSON string"),
        (load_mbpp_plus, [_he_row(task_id="Mbpp/124", base_input=[["x", "1j"]])], 1, r"field 'base_input': input 0: cannot deserialise"),
        (load_humaneval, [_he_row(test="def helper(c):\n    pass\n")], 1, r"field 'test': expected one top-level `def check"),
        (load_humaneval, [_he_row(test="def check(:\n")], 1, r"field 'test': does not parse"),
        (load_humaneval, ["[1, 2]"], 1, r":1: expected a JSON object, got list"),
        (load_bigcodebench, [_bcb_row("import unittest\nclass T:\n    pass\n")], 1, r"field 'test': no unittest test method"),
        (load_bigcodebench, [{**_bcb_row("class T(TestCase):\n    def test_x(self): pass\n"), "libs": "[os"}], 1, r"field 'libs'"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, loader, rows, line, message):
    f = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ProblemFormatError, match=message) as info:
        loader(f)
    assert info.value.line == line and info.value.path == str(f)


def test_gzip_and_plain_files_load_the_same(tmp_path):
    rows = [_he_row(), "", _he_row(task_id="T/1")]  # a blank line is skipped, line numbers kept
    plain = load_humaneval_plus(_write_jsonl(tmp_path / "x.jsonl", rows))
    gz = load_humaneval_plus(_write_jsonl(tmp_path / "x.jsonl.gz", rows, gz=True))
    assert plain == gz and [p.task_id for p in plain] == ["T/0", "T/1"]
    assert [t.args for t in plain[0].all_tests()] == [(1,), (2,), (3,)]
    as_strings = _he_row(base_input=json.dumps([[1]]), plus_input=json.dumps([[2], [3]]))
    assert load_humaneval_plus(_write_jsonl(tmp_path / "s.jsonl", [as_strings])) == plain[:1]
    with pytest.raises(ProblemFormatError, match=r"x\.jsonl\.gz:2: field 'atol'"):
        load_humaneval_plus(_write_jsonl(tmp_path / "x.jsonl.gz", [_he_row(), _he_row(atol=[])], gz=True))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_humaneval(tmp_path / "nope.jsonl")


# ----------------------------------------------------------------------------------------------
# LiveCodeBench (synthetic file: no LCB data is shared)


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
    f = _write_jsonl(tmp_path / "lcb.jsonl", _lcb_rows())
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
    _, p = load_livecodebench(_write_jsonl(tmp_path / "lcb.jsonl", _lcb_rows()))
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
        load_livecodebench(_write_jsonl(tmp_path / "lcb.jsonl", [row]))
    row = {**_lcb_rows()[1], "metadata": "{}"}
    with pytest.raises(ProblemFormatError, match=r":1: field 'metadata': .*no 'func_name'"):
        load_livecodebench(_write_jsonl(tmp_path / "lcb.jsonl", [row]))


# ----------------------------------------------------------------------------------------------
# Generic JSONL


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
    (p,) = load_jsonl(_write_jsonl(tmp_path / "a.jsonl", [row]))
    assert p.tests == {"base": [AssertTest("t", "assert 1")]} and p.code_prefix == "" and p.meta == {}


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"task_id": "a", "prompt": "p", "tests": [{"kind": "nope", "name": "t"}]}], r":1: field 'tests': split 'base' test 0: field 'kind'"),
        ([{"task_id": "a", "prompt": "p", "tests": {"x": [{"kind": "call", "name": "t", "entry_point": "f", "args": [], "oracle": "bogus"}]}}],
         r":1: field 'tests': split 'x' test 0: unknown oracle 'bogus'"),
        ([{"task_id": "a", "prompt": "p", "tests": []}, {"task_id": "a", "prompt": "p", "tests": []}], r":2: field 'task_id': duplicate 'a' \(first on line 1\)"),
        ([{"task_id": "a", "prompt": "p", "tests": [{"kind": "assert", "name": "t", "code": ""}] * 2}], r":1: field 'tests': duplicate test names \['t'\]"),
        ([{"task_id": "a", "prompt": "p", "tests": "x"}], r":1: field 'tests': expected array or object, got str"),
    ],
)
def test_jsonl_bad_rows(tmp_path, rows, message):
    with pytest.raises(ProblemFormatError, match=message):
        load_jsonl(_write_jsonl(tmp_path / "g.jsonl", rows))


# ----------------------------------------------------------------------------------------------
# load_benchmark, default paths, dataset_hash


@needs_data
def test_load_benchmark_default_paths_and_names():
    assert benchmark_path("humaneval+").resolve() == HEP.resolve()
    assert benchmark_path("bigcodebench").name == "BigCodeBench-v0.1.0.jsonl.gz"
    assert len(load_benchmark("humaneval")) == 164
    with pytest.raises(ValueError, match=r"unknown benchmark 'humaneval-x'; known: \["):
        load_benchmark("humaneval-x")
    with pytest.raises(ValueError, match="'livecodebench' has no default file"):
        load_benchmark("livecodebench")


def test_data_dir_env_and_not_found_message(tmp_path, monkeypatch):
    _write_jsonl(tmp_path / "HumanEval.jsonl.gz", [_he_row()], gz=True)
    monkeypatch.setenv("FOCALPO_DATA_DIR", str(tmp_path))
    assert benchmark_path("humaneval") == tmp_path / "HumanEval.jsonl.gz"
    assert [p.task_id for p in load_benchmark("humaneval")] == ["T/0"]
    monkeypatch.setitem(registry.BENCHMARKS, "humaneval", registry.Benchmark(load_humaneval, "Missing.jsonl"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        load_benchmark("humaneval")
    msg = str(info.value)
    assert str(tmp_path / "Missing.jsonl") in msg and str(tmp_path / "shared" / "data" / "Missing.jsonl") in msg
    assert "FOCALPO_DATA_DIR" in msg
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_benchmark("mbpp+", tmp_path / "nope.jsonl")


def test_dataset_hash(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_bytes(b"abc")
    assert dataset_hash(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert dataset_hash(f) == hashlib.sha256(b"abc").hexdigest()
