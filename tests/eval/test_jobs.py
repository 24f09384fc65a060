"""Tests of focalpo.eval.jobs: chunks by reference cost, results put back together, the harnesses' budgets.

Run: .venv/bin/python -m pytest tests/eval/test_jobs.py -q
"""

from __future__ import annotations

import pytest

from focalpo.eval.jobs import (
    CHUNK_SECONDS,
    CHUNKS_PER_WORKER,
    MAX_CHUNK_SECONDS,
    chunk_target,
    merge_results,
    sample_budget,
    split_by_cost,
)
from focalpo.sandbox.types import CallTest, ExecResult, Status, Verdict


def test_split_by_cost_groups_consecutive_tests_up_to_target():
    tests = [CallTest(f"t{i}", "f", ()) for i in range(6)]
    ref = {"t0": 0.1, "t1": 0.1, "t2": 0.3, "t3": 0.05, "t4": 0.05, "t5": 0.2}
    chunks = split_by_cost(tests, ref, target=0.25)
    assert [[t.name for t in c] for c, _ in chunks] == [["t0", "t1"], ["t2"], ["t3", "t4"], ["t5"]]
    assert [round(c, 2) for _, c in chunks] == [0.2, 0.3, 0.1, 0.2]
    # without reference times a list stays whole
    assert [[t.name for t in c] for c, _ in split_by_cost(tests, {})] == [[t.name for t in tests]]
    assert split_by_cost([], {}) == [([], 0.0)]


def test_merge_results_concatenates_in_order():
    a = ExecResult([Verdict("t0", Status.PASS)], stdout="x")
    b = ExecResult([Verdict("t1", Status.TIMEOUT, "exceeded 1s")], load_error="", stdout="y", stdout_truncated=True)
    m = merge_results([a, b])
    assert [v.name for v in m.verdicts] == ["t0", "t1"]
    assert m.status == Status.TIMEOUT and m.stdout == "xy" and m.stdout_truncated
    assert merge_results([a]) is a


def test_chunk_target_scales_with_the_run_within_bounds():

    assert chunk_target(0.0, 2) == CHUNK_SECONDS  # light runs: the finest chunks
    assert chunk_target(16 * CHUNK_SECONDS, 2) == CHUNK_SECONDS
    middle = (CHUNK_SECONDS + MAX_CHUNK_SECONDS) / 2
    assert chunk_target(middle * 2 * CHUNKS_PER_WORKER, 2) == pytest.approx(middle)
    assert chunk_target(middle * 2 * CHUNKS_PER_WORKER, 4) == pytest.approx(max(CHUNK_SECONDS, middle / 2))
    assert chunk_target(1e6, 2) == MAX_CHUNK_SECONDS  # HumanEval+ or MBPP+ on two workers
    assert chunk_target(1.0, 0) == CHUNK_SECONDS


def test_sample_budget_follows_each_harness():

    limits = [1.0] * 10 + [4.0] * 20  # 90 s of per-test limits
    assert sample_budget("humaneval+", limits, None, False) == 62.0  # evalplus: min(60, 90) + 1, joined 1 s more
    assert sample_budget("mbpp+", limits, None, True) == 63.0  # +1 without the fast check
    assert sample_budget("mbpp+", [1.0] * 5, None, False) == 7.0  # the sum when it is below the cap
    assert sample_budget("humaneval+", limits, 30.0, False) == 32.0
    assert sample_budget("bigcodebench", limits, None, False) == 242.0  # BigCodeBench: 240 + 1, joined 1 s more
    assert sample_budget("livecodebench", [6.0] * 3, None, False) == 3 * 7.0 + 5.0
    assert sample_budget("humaneval+", limits, 0, False) is None
