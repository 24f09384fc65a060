"""Tests of focalpo.problems.evalplus: HumanEval+/MBPP+ call tests, file order, test splits, oracles by entry point.

The benchmark files are read from ../shared/data beside the checkout, or from $FOCALPO_DATA_DIR
(never copied into the repository); tests that need them are skipped when that folder is absent.
Run: .venv/bin/python -m pytest tests/problems/test_evalplus.py -q
"""

from __future__ import annotations

from collections import Counter

import pytest
from problems_helpers import HE, HEP, MBPP, by_id, he_row, write_jsonl, needs_data

from focalpo.problems import load_benchmark, load_humaneval_plus, load_mbpp_plus
from focalpo.sandbox.types import NO_EXPECTED, CallTest


# ----------------------------------------------------------------------------------------------
# File order


@needs_data
def test_file_order_is_kept(humaneval_plus, mbpp_plus):
    assert list(humaneval_plus)[:3] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert list(humaneval_plus)[-1] == "HumanEval/163"
    assert list(mbpp_plus)[:2] == ["Mbpp/2", "Mbpp/3"]


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
    base_only = by_id(load_benchmark("humaneval+", HEP, splits=["base"]))
    assert {k for p in base_only.values() for k in p.tests} == {"base"}
    assert all(base_only[t].tests["base"] == p.tests["base"] for t, p in humaneval_plus.items())
    assert by_id(load_mbpp_plus(MBPP, splits=["plus"]))["Mbpp/2"].tests.keys() == {"plus"}
    # loaders without a `splits` argument are filtered after loading
    he = by_id(load_benchmark("humaneval", HE, splits=["base"]))
    assert he["HumanEval/0"].tests == humaneval["HumanEval/0"].tests
    with pytest.raises(ValueError, match="unknown test split"):
        load_humaneval_plus(HEP, splits=["extra"])


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
    rows = [he_row(task_id=f"Mbpp/{n}", entry_point=e) for n, e in [(164, "are_equivalent"), (295, "sum_div"), (3, "f")]]
    problems = load_mbpp_plus(write_jsonl(tmp_path / "m.jsonl", rows))
    assert [p.tests["base"][0].oracle for p in problems] == ["always_true", "or_zero", None]


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
