"""Whole-list time budgets (`Job.budgets`, `TimeBudget`): the wall time a sample's test list may take
in all, as evalplus bounds a sample's process, shared by the chunks that run parts of it."""

from __future__ import annotations

import time

import pytest
from sandbox_helpers import FAST, statuses

from focalpo.sandbox import CallTest, ExecPool, Job, TimeBudget

SLOW = "import time\ndef f(x):\n    time.sleep(0.3)\n    return x"


def _tests(n: int, prefix: str = "t") -> list[CallTest]:
    return [CallTest(f"{prefix}{i}", "f", (i,), expected=i, time_limit=1.0) for i in range(n)]


def test_a_list_that_overruns_its_budget_times_out_there_and_stops(pool):
    """10 tests of 0.3 s, each well within its 1 s limit, against 1.2 s for the whole list: the
    test running when the budget runs out times out, the rest are not run, and the job ends then."""
    budget = TimeBudget(1.2)
    t0 = time.monotonic()
    res = pool.map([Job(SLOW, _tests(10), budgets=[budget])])[0]
    elapsed = time.monotonic() - t0
    got = statuses(res)
    k = got.index("timeout")
    assert got[:k] == ["pass"] * k and got[k + 1 :] == ["not_run"] * (9 - k) and 2 <= k <= 4
    assert res.verdicts[k].message == "the sample's time budget of 1.2s ran out"
    assert 1.2 <= budget.spent < 2.0 and elapsed < 2.9  # the whole list takes 3 s
    unbounded = pool.map([Job(SLOW, _tests(10))])[0]
    assert statuses(unbounded) == ["pass"] * 10  # the same list passes without a budget


def test_each_segment_has_its_own_budget(pool):
    """Base and plus tests in one job (segments): base overruns its budget, plus still runs
    whole on its own, as evalplus runs them in two processes."""
    base, plus = _tests(6, "b"), _tests(2, "p")
    job = Job(SLOW, base + plus, segments=[6], budgets=[TimeBudget(0.8), TimeBudget(5.0)])
    got = statuses(pool.map([job])[0])
    assert "timeout" in got[:6] and got[-2:] == ["pass", "pass"]


def test_chunks_of_one_list_share_its_budget(monkeypatch):
    """Two chunks of one list, run one after the other: the first spends the budget, so the second
    times out at its first test without starting a process."""
    from focalpo.sandbox.slot import Slot

    budget = TimeBudget(0.7)
    first, second = Job(SLOW, _tests(3), budgets=[budget]), Job(SLOW, _tests(3, "u"), budgets=[budget])
    attempts = []
    real = Slot._attempt
    monkeypatch.setattr(Slot, "_attempt", lambda self, run, *a: attempts.append(run.job) or real(self, run, *a))
    with ExecPool(workers=1, limits=FAST) as pool:
        a, b = pool.map([first]), pool.map([second])
    assert "timeout" in statuses(a[0])
    assert statuses(b[0]) == ["timeout", "not_run", "not_run"]
    assert second not in attempts  # no process for the second chunk


def test_budgets_must_match_the_segments():
    with pytest.raises(ValueError, match="one per segment"):
        Job(SLOW, _tests(4), segments=[2], budgets=[TimeBudget(1.0)])
