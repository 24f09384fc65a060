"""Tests of `focalpo.report.stats`: Student-t critical values and confidence intervals, with the arithmetic.

Run: .venv/bin/python -m pytest -q tests/report/test_stats.py
"""

from __future__ import annotations

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
