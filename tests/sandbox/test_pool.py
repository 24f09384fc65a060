"""Tests of focalpo.sandbox.pool: scheduling jobs on slots (order of results, costliest first,
generators, errors in a slot's thread, fail_fast groups, progress bar, closing).

Run: .venv/bin/python -m pytest tests/sandbox/test_pool.py -q
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sandbox_helpers import FAST, statuses

from focalpo.sandbox import CallTest, ExecPool, ExecResult, Job, SandboxError, execute
from focalpo.sandbox.slot import Slot


def test_map_keeps_job_order_and_matches_execute():
    """Jobs sleep longest-first, so on 2 workers they (typically) finish out of order; map() returns
    them in job order, with the same verdicts and outputs as one-by-one execute()."""
    program = "import time\ndef f(t, v):\n    time.sleep(t)\n    return v"
    jobs = [
        Job(program, [CallTest(f"j{i}", "f", ((5 - i) * 0.05, i), expected=i % 2)], return_outputs=True) for i in range(6)
    ]
    with ExecPool(workers=2, limits=FAST) as pool2:
        completion = [i for i, _ in pool2.imap(jobs)]
        results = pool2.map(jobs)
    assert sorted(completion) == list(range(6))
    sequential = [execute(j.program, j.tests, FAST, return_outputs=True) for j in jobs]
    assert [r.outputs for r in results] == [[i] for i in range(6)]
    assert [(statuses(r), r.outputs) for r in results] == [(statuses(r), r.outputs) for r in sequential]


def test_an_error_in_a_worker_surfaces_and_no_job_starts_after_it(monkeypatch):
    """map() and imap() raise the first error a slot's thread met (here: a run that raises), and
    no slot starts another job after it: the slot busy with the slow first job stops there. A
    closed pool refuses jobs (map used to return Nones, imap nothing)."""
    started = []
    real_run = Slot.run

    def run(self, job, limits):
        started.append(job.program)
        if "boom" in job.program:
            raise RuntimeError("boom")
        return real_run(self, job, limits)

    monkeypatch.setattr(Slot, "run", run)
    slow = "import time\ndef f():\n    time.sleep(0.3)\n    return 1"
    programs = [slow, "boom = 1\ndef f():\n    return 1"] + [f"def f():\n    return {k}" for k in range(4)]
    jobs = [Job(p, [CallTest("t", "f", (), expected=1)]) for p in programs]
    with ExecPool(workers=2, limits=FAST) as pool2:
        for consume in (pool2.map, lambda js: list(pool2.imap(js))):
            started.clear()
            with pytest.raises(RuntimeError, match="boom"):
                consume(jobs)
            time.sleep(0.5)  # the slow job has ended: had its slot gone on, it would have started another
            assert sorted(started) == sorted(programs[:2])
    for consume in (pool2.map, lambda js: list(pool2.imap(js))):  # closed: an error, not a hang or Nones
        with pytest.raises(SandboxError, match="closed"):
            consume(jobs)


def test_map_never_returns_a_missing_result(pool, monkeypatch):
    """If a slot's thread dies between jobs (here: its progress-bar update raises), map() raises
    instead of returning None for the jobs that thread would have run."""
    import focalpo.sandbox.pool as sandbox_pool

    class BrokenBar:
        def update(self, n):
            raise ValueError("bar")

        def close(self):
            pass

    monkeypatch.setattr(sandbox_pool, "_progress", lambda total, desc: BrokenBar())
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the thread's own report
    jobs = [Job("def f():\n    return 1", [CallTest("t", "f", (), expected=1)]) for _ in range(3)]
    with pytest.raises(SandboxError, match="ended before its jobs"):
        pool.map(jobs, desc="eval")


@pytest.mark.parametrize("fail_fast", [True, False])
def test_jobs_of_a_failed_group_are_skipped_under_fail_fast(pool, fail_fast):
    """Chunks of one test list share a group: once one fails, those not started are NOT_RUN."""
    program = "def f(x):\n    return x"
    limits = replace(FAST, fail_fast=fail_fast)
    jobs = [
        Job(program, [CallTest("a", "f", (1,), expected=2)], limits, cost=2.0, group="g"),  # runs first, fails
        Job(program, [CallTest("b", "f", (1,), expected=1)], limits, cost=1.0, group="g"),
        Job(program, [CallTest("c", "f", (1,), expected=1)], limits, cost=0.5, group="other"),
        Job(program, [CallTest("d", "f", (1,), expected=1)], limits, cost=0.0),
    ]
    results = pool.map(jobs)  # one worker: jobs start in decreasing cost
    expected_b = "not_run" if fail_fast else "pass"
    assert [statuses(r) for r in results] == [["wrong_answer"], [expected_b], ["pass"], ["pass"]]
    merged = ExecResult(results[1].verdicts + results[0].verdicts)
    assert merged.status == "wrong_answer"  # a test that ran and failed outranks one not run


def test_pool_starts_its_zygotes_in_the_background_and_closes_cleanly_before_they_are_up():
    early = ExecPool(workers=2, limits=FAST)
    procs = [slot.proc for slot in early._slots]
    early.close()  # possibly before any zygote said hello
    assert all(p.poll() is not None for p in procs)
    with ExecPool(workers=2, limits=FAST) as pool2:
        assert pool2.isolation["pid_namespace"] == pool2._slots[1].isolation["pid_namespace"]
        assert all(slot.ready for slot in pool2._slots)


def test_map_progress_bar(pool, capsys):
    jobs = [Job("def f():\n    return 1", [CallTest("t", "f", (), expected=1)]) for _ in range(3)]
    results = pool.map(jobs, desc="sandbox-progress")
    assert [r.passed for r in results] == [True] * 3
    assert "sandbox-progress" in capsys.readouterr().err


def _started_spy(monkeypatch):
    """Record the program of every job the pool starts; returns (list of programs, Event set on each start)."""
    import focalpo.sandbox.pool as sandbox_pool

    started: list[str] = []
    event = threading.Event()
    run = sandbox_pool.ExecPool._run_with_retry

    def spy(self, slot, job):
        started.append(job.program)
        event.set()
        return run(self, slot, job)

    monkeypatch.setattr(sandbox_pool.ExecPool, "_run_with_retry", spy)
    return started, event


def test_map_starts_jobs_while_a_generator_is_still_yielding_them(pool, monkeypatch, capsys):
    started, event = _started_spy(monkeypatch)
    test = [CallTest("t", "f", (), expected=1)]

    def jobs():
        yield Job("def f():\n    return 1", test)
        # map has not drained the generator first: the job above runs while we are still here
        assert event.wait(30), "the first job did not start while the generator was paused"
        yield Job("def f():\n    return 2", test, cost=1.0)
        yield Job("def f():\n    return 1", test)

    results = pool.map(jobs(), desc="streamed")
    assert [r.status for r in results] == ["pass", "wrong_answer", "pass"]  # in the order yielded
    assert started[0] == "def f():\n    return 1"
    assert "3/3" in capsys.readouterr().err  # the bar's total, known once the generator ended


def test_map_stops_starting_jobs_when_the_generator_raises(pool, monkeypatch):
    started, event = _started_spy(monkeypatch)
    test = [CallTest("t", "f", (), expected=1)]

    def jobs():
        yield Job("def f():\n    return 1", test)
        assert event.wait(30)
        raise KeyError("bad sample")

    with pytest.raises(KeyError, match="bad sample"):
        pool.map(jobs())
    assert len(started) == 1
    assert [r.passed for r in pool.map([Job("def f():\n    return 1", test)])] == [True]  # the pool still works


def test_ctrl_c_in_a_generator_does_not_wait_for_the_running_jobs(monkeypatch):
    _, event = _started_spy(monkeypatch)
    slow = Job("import time\ndef f():\n    time.sleep(5)\n    return 1", [CallTest("t", "f", (), expected=1, time_limit=10.0)])

    def jobs():
        yield slow
        assert event.wait(30)
        raise KeyboardInterrupt

    with ExecPool(workers=1, limits=FAST) as one:
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            one.map(jobs())
        assert time.monotonic() - t0 < 4  # the 5 s job was not waited for


def test_map_starts_the_costliest_waiting_job_first(monkeypatch):
    started, _ = _started_spy(monkeypatch)
    test = [CallTest("t", "f", (), expected=1)]
    programs = [f"def f():\n    return {i}" for i in range(4)]
    class SlowList(list):  # a worker that could take a job while the list is read would get the first
        def __iter__(self):
            for job in super().__iter__():
                yield job
                time.sleep(0.05)

    jobs = SlowList(Job(p, test, cost=c) for p, c in zip(programs, [0.1, 0.3, 0.2, 0.3]))
    with ExecPool(workers=1, limits=FAST) as one:  # one worker: starts are in the order taken
        results = one.map(jobs)
    assert [r.passed for r in results] == [False, True, False, False]  # in the order given
    assert started == [programs[1], programs[3], programs[2], programs[0]]  # equal costs: in order
