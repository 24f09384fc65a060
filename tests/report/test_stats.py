"""Tests of `focalpo.report.stats`: Student-t critical values and confidence intervals, with the arithmetic.

Run: .venv/bin/python -m pytest -q tests/report/test_stats.py
"""

from __future__ import annotations

import math
import statistics

import pytest

from focalpo.report.stats import aggregate, mean_ci, t_critical


def test_t_critical_known_values():
    for df, t in [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)]:
        assert t_critical(df) == pytest.approx(t, abs=5e-4)
    assert t_critical(31) == t_critical(1000) == 1.96
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_critical(0)


def test_ci_by_hand():
    """[0.2, 0.4, 0.6]: mean 0.4, s = 0.2, ci95 = t_{0.975,2} * 0.2 / sqrt(3) = 4.3027 * 0.11547 = 0.49683"""
    cell = mean_ci([0.2, 0.4, 0.6])
    assert cell["mean"] == pytest.approx(0.4) and cell["std"] == pytest.approx(0.2)
    assert cell["ci95"] == pytest.approx(0.49683, abs=1e-4)
    assert mean_ci([0.3]) == {"mean": 0.3, "std": 0.0, "ci95": None, "values": [0.3]}


def test_aggregate_over_seeds_that_have_the_method():
    """sft [0.2, 0.4]: mean 0.3, s = 0.141421, ci95 = 12.7062 * 0.141421 / sqrt(2) = 1.27062; rpo in one seed."""
    table = aggregate([{"results": {"sft": {"pass@1": 0.2}, "rpo": {"pass@1": 0.5}}},
                       {"results": {"sft": {"pass@1": 0.4}}}])
    assert table["sft"]["pass@1"]["mean"] == pytest.approx(0.3)
    assert table["sft"]["pass@1"]["std"] == pytest.approx(0.1414213, abs=1e-6)
    assert table["sft"]["pass@1"]["ci95"] == pytest.approx(1.27062, abs=1e-4)
    assert table["rpo"]["pass@1"]["values"] == [0.5] and table["rpo"]["pass@1"]["ci95"] is None


def test_sign_test_p_is_the_exact_binomial_tail():
    from focalpo.report.stats import sign_test_p

    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(2 / 32)  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
    assert sign_test_p(1, 4) == pytest.approx(2 * 6 / 32)  # P(X <= 1) = (1 + 5) / 32
    assert sign_test_p(3, 3) == 1.0


def test_paired_difference_by_hand():
    from focalpo.report.stats import paired_difference

    a = [1, 1, 1, 0, 1, 0, 1, 1]  # pass/fail per (seed, task)
    b = [0, 1, 0, 0, 1, 0, 0, 1]
    out = paired_difference(a, b, resamples=2000, seed=1)
    assert out["mean_diff"] == pytest.approx(3 / 8)
    assert (out["better"], out["worse"], out["units"]) == (3, 0, 8)
    assert out["p_value"] == pytest.approx(2 / 8)  # 3 discordant, all one way: 2 * (1/2)^3
    lo, hi = out["ci95"]
    assert 0.0 <= lo <= 3 / 8 <= hi <= 0.875  # differences are 0 or 1: the mean of a resample lies in [0, 1]
    d_sd = statistics.stdev([1, 0, 1, 0, 0, 0, 1, 0])
    assert out["mdd80"] == pytest.approx(2.8 * d_sd / math.sqrt(8))
    assert paired_difference(a, b, resamples=2000, seed=1) == out  # seeded
    with pytest.raises(ValueError):
        paired_difference([1], [1, 0])


def test_paired_table_pairs_units_by_seed_and_task():
    from focalpo.report.stats import paired_table

    seeds = [{"seed": 0, "per_task": {"sft": {"t1": 0, "t2": 1}, "dpo": {"t1": 1, "t2": 1}, "focused": {"t1": 1, "t2": 0}}},
             {"seed": 1, "per_task": {"sft": {"t1": 0, "t3": 0}, "dpo": {"t1": 0, "t3": 1}, "focused": {"t1": 1}}}]
    table = paired_table(seeds, resamples=500)
    assert set(table) == {"dpo", "focused", "sft"} and set(table["sft"]) == {"dpo"} and set(table["dpo"]) == {"sft"}
    assert table["focused"]["sft"]["units"] == 3  # (0,t1), (0,t2), (1,t1): (1,t3) has no focused outcome
    assert table["focused"]["sft"]["mean_diff"] == pytest.approx((1 + -1 + 1) / 3)
    assert table["dpo"]["sft"]["mean_diff"] == pytest.approx((1 + 0 + 0 + 1) / 4)


def test_paired_table_with_each_methods_own_baselines():
    from focalpo.report.stats import paired_table

    per_task = {"sft": {"t1": 0, "t2": 0}, "dpo@a": {"t1": 1, "t2": 0}, "m": {"t1": 1, "t2": 1}, "dpo@b": {"t1": 0, "t2": 0}}
    table = paired_table([{"seed": 0, "per_task": per_task}],
                         baselines={"m": {"sft": "sft", "dpo": "dpo@a"}, "dpo@a": {"sft": "sft"}}, resamples=100)
    assert set(table) == {"m", "dpo@a"}  # methods without baselines are left out
    assert set(table["m"]) == {"sft", "dpo"} and table["m"]["dpo"]["mean_diff"] == 0.5  # vs dpo@a, labelled dpo
    assert table["m"]["sft"]["mean_diff"] == 1.0 and table["dpo@a"]["sft"]["mean_diff"] == 0.5


def test_no_minimum_detectable_difference_without_any_difference():
    from focalpo.report.stats import paired_difference

    out = paired_difference([1, 0, 1], [1, 0, 1], resamples=100)
    assert out["mean_diff"] == 0.0 and out["p_value"] == 1.0 and out["mdd80"] is None and out["ci95"] == [0.0, 0.0]
