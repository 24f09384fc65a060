"""Tests of focalpo.eval.passk: pass@k against brute force and exact fractions, summaries.

Run: .venv/bin/python -m pytest tests/eval/test_passk.py -q
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations

import pytest
from eval_helpers import record

from focalpo.eval.passk import format_summary_table, mean_pass_at_k, pass_at_k, summarize

# --------------------------------------------------------------------------------------------------
# pass@k


def brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Share of the k-subsets of n samples (the first c correct) that hold a correct sample."""
    subsets = list(combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


def test_pass_at_k_equals_brute_force_for_all_small_cases():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(float(brute_force_pass_at_k(n, c, k)), abs=1e-12), (n, c, k)


def test_pass_at_k_hand_computed():
    # n=4, c=2, k=2: 1 - C(2,2)/C(4,2) = 1 - 1/6 = 5/6
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6, abs=1e-15)
    # pass@1 is the plain success rate c/n
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=1e-15)
    assert pass_at_k(5, 0, 3) == 0.0
    # n - c < k: every 3-subset of 5 samples with 3 correct holds a correct one
    assert pass_at_k(5, 3, 3) == 1.0
    assert pass_at_k(5, 5, 1) == 1.0


@pytest.mark.parametrize("n,c,k", [(200, 3, 100), (2000, 3, 1000), (2000, 1500, 400)])
def test_pass_at_k_large_n_is_exact(n, c, k):
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    got = pass_at_k(n, c, k)
    assert math.isfinite(got)
    assert got == pytest.approx(float(exact), abs=1e-12)


def test_naive_binomials_overflow_where_product_form_does_not():
    # C(2000, 1000) ~ 2e600 is beyond float64; the product form never builds it.
    with pytest.raises(OverflowError):
        float(math.comb(2000, 1000))
    assert 0.0 < pass_at_k(2000, 3, 1000) < 1.0


def test_pass_at_k_is_monotone_in_k_and_c():
    n = 20
    for c in range(n + 1):
        values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
        assert all(a <= b + 1e-15 for a, b in zip(values, values[1:]))
    for k in range(1, n + 1):
        values = [pass_at_k(n, c, k) for c in range(n + 1)]
        assert all(a <= b + 1e-15 for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(
    "n,c,k,match",
    [(5, 1, 0, "k >= 1"), (5, 6, 1, "0 <= c <= n"), (5, -1, 1, "0 <= c <= n"), (5, 1, 6, "k <= n")],
)
def test_pass_at_k_rejects_bad_arguments(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


def test_pass_at_k_rejects_non_integers():
    with pytest.raises(TypeError):
        pass_at_k(5.0, 1, 1)


def test_mean_pass_at_k_hand_computed_and_k_filter():
    results = {
        "t/0": [True, False, False, False],  # pass@1 = 1/4, pass@2 = 1 - C(3,2)/C(4,2) = 1/2
        "t/1": [True, True, False, False, False],  # pass@1 = 2/5, pass@2 = 1 - C(3,2)/C(5,2) = 7/10
    }
    got = mean_pass_at_k(results, ks=(1, 2, 5))
    # k=5 is left out: t/0 has only 4 samples
    assert list(got) == ["pass@1", "pass@2"]
    assert got["pass@1"] == pytest.approx((1 / 4 + 2 / 5) / 2, abs=1e-15)
    assert got["pass@2"] == pytest.approx((1 / 2 + 7 / 10) / 2, abs=1e-15)


def test_mean_pass_at_k_default_ks_and_errors():
    results = {f"t/{i}": [i % 2 == 0] * 10 for i in range(4)}
    assert mean_pass_at_k(results) == {"pass@1": 0.5, "pass@10": 0.5}
    assert mean_pass_at_k(results, ks=(1, 1)) == {"pass@1": 0.5}
    with pytest.raises(ValueError, match="no tasks"):
        mean_pass_at_k({})
    with pytest.raises(ValueError, match="positive"):
        mean_pass_at_k(results, ks=(0,))


# --------------------------------------------------------------------------------------------------
# summary


def test_summarize_base_and_plus():
    records = [
        record("t/0", 0, "pass", "pass"),
        record("t/0", 1, "pass", "fail"),
        record("t/1", 0, "fail", "fail"),
        record("t/1", 1, "pass", "pass"),
    ]
    s = summarize(records, ks=(1, 2, 10), benchmark="toy")
    # base: t/0 2/2, t/1 1/2 -> pass@1 = (1 + 0.5)/2 = 0.75; pass@2 = (1 + 1)/2 = 1
    # plus: t/0 1/2, t/1 1/2 -> pass@1 = 0.5; pass@2 = 1
    assert s == {
        "benchmark": "toy",
        "n_tasks": 2,
        "n_samples": 4,
        "min_samples_per_task": 2,
        "max_samples_per_task": 2,
        "base": {"pass@1": 0.75, "pass@2": 1.0},
        "plus": {"pass@1": 0.5, "pass@2": 1.0},
    }


def test_summarize_plus_never_exceeds_base():
    records = [record(f"t/{i % 3}", i // 3, "pass" if i % 2 else "fail", "pass" if i % 5 else "fail") for i in range(30)]
    s = summarize(records, ks=(1, 5, 10))
    for key, value in s["plus"].items():
        assert value <= s["base"][key]


def test_summarize_base_only_has_no_plus():
    s = summarize([record("t/0", 0, "pass"), record("t/0", 1, "fail"), record("t/1", 0, "fail")])
    # t/1 has one sample: only pass@1; (1/2 + 0)/2
    assert s["base"] == {"pass@1": 0.25}
    assert s["plus"] is None
    assert (s["min_samples_per_task"], s["max_samples_per_task"]) == (1, 2)


def test_summarize_plus_none_in_plus_run_counts_base():
    s = summarize([record("t/0", 0, "pass", "pass"), record("t/1", 0, "pass", None), record("t/2", 0, "fail", None)])
    assert s["plus"] == {"pass@1": pytest.approx(2 / 3, abs=1e-15)}


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"base_status": "ok"}, "field 'base_status'"),
        ({"plus_status": "wrong_answer"}, "field 'plus_status'"),
        ({"task_id": 3}, "field 'task_id'"),
    ],
)
def test_summarize_names_bad_field(bad, match):
    records = [record("t/0", 0, "pass"), {**record("t/0", 1, "pass"), **bad}]
    with pytest.raises(ValueError, match=f"sample record 1 .*{match}"):
        summarize(records)


def test_summarize_rejects_duplicates_and_empty():
    with pytest.raises(ValueError, match="duplicate"):
        summarize([record("t/0", 0, "pass"), record("t/0", 0, "fail")])
    with pytest.raises(ValueError, match="no sample records"):
        summarize([])


def test_format_summary_table():
    s = summarize(
        [record("t/0", 0, "pass", "pass"), record("t/0", 1, "pass", "fail")],
        benchmark="humaneval",
    )
    assert format_summary_table(s) == (
        "benchmark  split  pass@1  pass@10  pass@100  n tasks  n samples\n"
        "humaneval  base   100.0%        -         -        1          2\n"
        "humaneval  plus    50.0%        -         -        1          2\n"
    )


def test_format_summary_table_several_benchmarks_and_extra_k():
    a = summarize([record("t/0", 0, "pass")], benchmark="mbpp")
    b = summarize([record("t/0", i, "pass" if i < 1 else "fail") for i in range(3)], ks=(1, 2), benchmark="")
    lines = format_summary_table([a, b]).splitlines()
    assert lines[0].split() == ["benchmark", "split", "pass@1", "pass@2", "pass@10", "pass@100", "n", "tasks", "n", "samples"]
    assert lines[1].split() == ["mbpp", "base", "100.0%", "-", "-", "-", "1", "1"]
    # 1 - C(2,2)/C(3,2) = 2/3
    assert lines[2].split() == ["-", "base", "33.3%", "66.7%", "-", "-", "1", "3"]
    assert len({len(line) for line in lines}) <= 2  # fixed width (only trailing dashes may vary)


def test_summarize_by_groups_tasks_in_difficulty_order():
    from eval_helpers import record

    from focalpo.eval.passk import format_breakdown, summarize_by

    records = [record("t/0", 0, "pass"), record("t/0", 1, "fail"), record("t/1", 0, "fail"), record("t/1", 1, "fail"),
               record("t/2", 0, "pass"), record("t/2", 1, "pass")]
    groups = {"t/0": "Hard", "t/1": "Easy", "t/2": "Medium"}
    by = summarize_by(records, groups, ks=(1, 2))
    assert list(by) == ["Easy", "Medium", "Hard"]
    assert [by[g]["base"] for g in by] == [{"pass@1": 0.0, "pass@2": 0.0}, {"pass@1": 1.0, "pass@2": 1.0},
                                          {"pass@1": 0.5, "pass@2": 1.0}]
    assert list(summarize_by(records, {"t/0": "b", "t/1": "a", "t/2": "b"}, ks=(1,))) == ["a", "b"]
    table = format_breakdown("difficulty", by, summarize(records, ks=(1, 2))).splitlines()
    assert table[0].split()[:2] == ["difficulty", "split"] and table[-1].split()[:3] == ["all", "base", "50.0%"]
    with pytest.raises(ValueError, match="task 't/2' has no group"):
        summarize_by(records, {"t/0": "a", "t/1": "a"})
