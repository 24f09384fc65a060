"""The parent's side of the frame protocol: one job process's reports, judged as they arrive.

A `Slot` (see `focalpo.sandbox.slot`) runs a job as one or more *attempts*: forked job processes
each working through `tests[start:]`. What the whole run gathers (verdicts, outputs, captured
streams, coverage) is one `RunState`; what one process has said so far (loaded? which test is
next? a big value announced?) and the deadline it is held to is its `Attempt`. The slot feeds the
attempt the frames read from the job's result pipe (`Attempt.handle`) and, once the process is
gone, asks where a follow-up process must start (`Attempt.conclude`).

Every frame is untrusted: it is decoded with the safe unpickler, must be the report the protocol
expects next, and is judged here, in trusted code (`focalpo.sandbox.judge`); anything else kills
the job ("protocol").
"""

from __future__ import annotations

import bisect
import math
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from focalpo.sandbox.feedback import CoverageLines, format_traceback, parse_traceback
from focalpo.sandbox.judge import CODES, judge_test, traceback_source
from focalpo.sandbox.types import ExecResult, Job, Limits, Status, TestCase, TimeBudget, Verdict
from focalpo.sandbox.wire import Pickled, safe_loads


class Tail:
    """Keeps the last `limit` bytes of a stream and whether anything was dropped."""

    def __init__(self, limit: int):
        self.limit = limit
        self.buf = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        self.buf += chunk
        if len(self.buf) > self.limit:
            del self.buf[: len(self.buf) - self.limit]
            self.truncated = True

    def text(self) -> str:
        return self.buf.decode("utf-8", errors="replace")


@dataclass(eq=False)
class RunState:
    """One `Slot.run` of a job: what its attempts have gathered so far."""

    job: Job
    limits: Limits
    tests: list[TestCase]
    side: list[tuple]  # what the job may know of each test (`judge.job_side`)
    verdicts: list[Verdict | None]
    outputs: list[Any] | None  # decoded return values, when the job asked for them
    out: Tail
    err: Tail
    result: ExecResult  # load errors go here as they are reported
    covered: CoverageLines | None  # where "cov" frames go (Job.coverage), shared by the attempts
    batch: bool = True  # the next attempt may hold passing results back for a few milliseconds

    def finish(self, t0: float) -> ExecResult:
        """The result, once no attempt is left to run; `t0` is when the run started (perf_counter)."""
        res = self.result
        if self.covered is not None:
            res.coverage = self.covered.report()
        res.verdicts = [v or Verdict(t.name, Status.NOT_RUN) for v, t in zip(self.verdicts, self.tests)]
        res.outputs = self.outputs
        res.stdout, res.stderr = self.out.text(), self.err.text()
        res.stdout_truncated, res.stderr_truncated = self.out.truncated, self.err.truncated
        res.duration = time.perf_counter() - t0
        return res


class Attempt:
    """State of one forked job process working through tests[start:], and the deadline it is held to."""

    def __init__(self, run: RunState, start: int, pidfd: int):
        self.run = run
        self.start = start
        self.job = run.job
        self.covered = run.covered
        self.pidfd = pidfd  # the job process, to kill
        self.traceback: tuple[int, tuple] | None = None  # (test index or -1, parsed "tb" frame)
        self.current = start  # next test whose report is awaited
        self.loaded = False
        self.finished = False  # the job said "done" (or load failed and was handled)
        self.resume: int | None = None  # where a finished run goes on (the next segment after a fail_fast stop)
        self.stop_reason = ""  # why we killed it: "timeout", "fail_fast", "protocol"
        self.killed = False
        self.batch = run.batch  # the job may hold passing results back for a few milliseconds
        self.extended = -1  # last test whose big return value was announced ("ran")
        self.ran_seconds = 0.0  # that test's call duration, from the notice
        self.deadline = math.inf  # monotonic time of the hard kill (the slot sets it when it starts watching)
        self.transfer: tuple[float, float] | None = None  # (hard cap, idle allowance) while a big value arrives
        self.charged_at = time.monotonic()  # time up to here is charged to a budget (Job.budgets)

    def charge(self) -> float:
        """Charge the time since the last charge to the running test's budget; seconds it has left."""
        now = time.monotonic()
        budget, spent, self.charged_at = budget_of(self.job, self.current), now - self.charged_at, now
        return math.inf if budget is None else budget.charge(spent)

    def kill(self, reason: str) -> None:
        if not self.killed:
            self.stop_reason = reason
            self.killed = True
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def handle(self, raw_frames: list) -> None:
        """Act on result frames: judge reports, move the deadline on, or kill the job."""
        limits, tests = self.run.limits, self.run.tests
        for raw in raw_frames:
            if self.killed:
                break
            verdict = self.on_frame(raw)
            if verdict == "extend":
                # The job says the call is over and a big value follows. The notice is
                # untrusted (a program can write it), so it buys no compute time: the value's
                # bytes must start, and keep, flowing within the test's own allowance, and
                # all of it must arrive by transfer_time.
                now = time.monotonic()
                idle = limits.time_for(tests[self.current]) + limits.grace
                self.transfer = (now + limits.transfer_time, idle)
                self.deadline = min(self.transfer[0], now + idle)
            elif verdict:
                self.kill(verdict)
            else:
                self.transfer = None
                nxt = tests[self.current] if self.current < len(tests) else None
                budget = limits.time_for(nxt) if nxt is not None else limits.test_time
                self.deadline = time.monotonic() + budget + limits.grace

    def on_frame(self, raw) -> str:
        """Handle one result frame; returns a reason to kill the job, or ''."""
        tests = self.run.tests
        if type(raw) is bytearray:  # a big return value's pickle: the report of the announced test
            if not (self.loaded and self.extended == self.current < len(tests)):
                return "protocol"
            return self.on_test(self.current, "ok", "", self.ran_seconds, raw)
        try:
            msg = safe_loads(raw)
        except Exception:  # noqa: BLE001 - forged or corrupt bytes
            return "protocol"
        if not isinstance(msg, tuple) or not msg:
            return "protocol"
        tag = msg[0]
        if tag == "load" and len(msg) == 4 and not self.loaded:
            _, code, message, _dt = msg
            if code == "ok":
                self.loaded = True
                return ""
            res, verdicts = self.run.result, self.run.verdicts
            res.load_error = str(message)
            if self.traceback is not None and self.traceback[0] == -1:
                res.load_traceback = format_traceback(*self.traceback[1], traceback_source(self.job, None))
            status = CODES.get(code, Status.EXCEPTION)
            for i in range(self.start, len(tests)):
                verdicts[i] = Verdict(tests[i].name, status, f"program failed to load: {message}")
            self.finished = True
            return ""
        if tag == "test" and len(msg) == 6 and self.loaded and msg[1] == self.current:
            _, i, code, message, dt, payload = msg
            if not isinstance(code, str) or not isinstance(message, str) or not isinstance(dt, (int, float)):
                return "protocol"
            return self.on_test(i, code, message, dt, payload)
        if tag == "oks" and len(msg) == 4 and self.loaded and msg[1] == self.current:
            return self.on_oks(msg[2], msg[3])
        if tag == "ran" and len(msg) == 3 and self.loaded and msg[1] == self.current and self.extended < self.current:
            if not isinstance(msg[2], (int, float)):
                return "protocol"
            self.extended, self.ran_seconds = self.current, float(msg[2])  # one notice per test: a second one is a forgery
            return "extend"  # the call finished; its (large) value is on the way, as a raw frame
        if tag == "oversized" and self.loaded and self.current < len(tests):
            self.run.verdicts[self.current] = Verdict(tests[self.current].name, Status.WRONG_ANSWER, "output too large")
            self.current += 1
            return ""
        if tag == "done" and self.loaded and self.current == len(tests):
            self.finished = True
            return ""
        if tag == "tb" and len(msg) == 4 and type(msg[1]) is int and msg[1] == (self.current if self.loaded else -1):
            parsed = parse_traceback(msg)  # only failing tests send one: not the hot path
            self.traceback = None if parsed is None else (msg[1], parsed)
            return "" if parsed is not None else "protocol"
        if tag == "cov" and len(msg) == 2 and self.covered is not None:
            return "" if self.covered.add(msg[1]) else "protocol"
        return "protocol"

    def on_oks(self, seconds, payloads) -> str:
        """Judge a batch of tests that ran to completion, from the current one on."""
        if type(seconds) is not list or type(payloads) is not list or len(seconds) != len(payloads):
            return "protocol"
        tests, verdicts = self.run.tests, self.run.verdicts
        start = self.current
        if start + len(payloads) > len(tests) or not all(type(dt) is float for dt in seconds):
            return "protocol"
        want_value = self.run.outputs is not None
        for k, payload in enumerate(payloads):
            i = start + k
            test = tests[i]
            exp = getattr(test, "expected", None)
            # The common case inline: a call test whose output has the expected pickle's bytes.
            if (
                type(payload) is bytes and type(exp) is Pickled and type(exp.data) is bytes
                and not want_value and test.oracle is None and payload == exp.data
            ):  # fmt: skip
                verdicts[i] = Verdict(test.name, Status.PASS, "", seconds[k])
                self.current += 1
                continue
            stop = self.on_test(i, "ok", "", seconds[k], payload)
            if stop:
                return stop
        return ""

    def on_test(self, i: int, code: str, message: str, dt: float, payload: Any) -> str:
        """Judge the report of test i (the current one); returns "fail_fast" or ''."""
        run = self.run
        tests, limits, verdicts, outputs = run.tests, run.limits, run.verdicts, run.outputs
        status, why, value = judge_test(tests[i], code, message, payload, outputs is not None)
        if status == Status.TIMEOUT:
            why = f"exceeded {limits.time_for(tests[i]):g}s"
        verdicts[i] = Verdict(tests[i].name, status, why, float(dt))
        if self.traceback is not None:
            if self.traceback[0] == i and status in (Status.EXCEPTION, Status.WRONG_ANSWER):
                verdicts[i].traceback = format_traceback(*self.traceback[1], traceback_source(self.job, tests[i]))
            self.traceback = None
        if outputs is not None and code == "ok":
            outputs[i] = value
        self.current += 1
        if limits.fail_fast and status != Status.PASS:
            self.finished = True
            self.resume = next_segment(self.job, i)
            return "fail_fast"
        return ""

    def conclude(self, status: int | None) -> tuple[int | None, bool]:
        """After the process ended (wait `status`): (where a follow-up job must start or None,
        whether it may batch its reports)."""
        run = self.run
        tests, limits, verdicts = run.tests, run.limits, run.verdicts
        if self.finished:
            return self.resume, True
        if self.stop_reason == "budget":  # no re-run to pin the verdict: the time is spent
            return out_of_budget(self.job, self.current, verdicts), True
        if not self.loaded:
            if self.stop_reason == "timeout":
                st, why = Status.TIMEOUT, f"program load exceeded {limits.load_time:g}s"
            elif self.stop_reason == "protocol":
                st, why = Status.CRASHED, "the job wrote an invalid result frame while loading"
            else:
                st, why = Status.CRASHED, "program " + (describe_status(status) if status and status > 0 else "vanished") + " while loading"
            run.result.load_error = why
            for i in range(self.start, len(tests)):
                verdicts[i] = Verdict(tests[i].name, st, why)
            return None, True
        if self.current >= len(tests):
            return None, True
        test = tests[self.current]
        if self.batch and self.stop_reason != "protocol":
            # Passing results may have been pending in the job's batch when it hung or died, so
            # we cannot tell which test did it. Run the unreported tests again, reporting each at
            # once, to pin the verdict on the right one.
            return self.current, False
        if self.stop_reason == "timeout":
            verdicts[self.current] = Verdict(test.name, Status.TIMEOUT, f"exceeded {limits.time_for(test):g}s (killed)", limits.time_for(test))
        elif self.stop_reason == "protocol":
            verdicts[self.current] = Verdict(test.name, Status.CRASHED, "the job wrote an invalid result frame")
        elif status is not None and status > 0:
            verdicts[self.current] = Verdict(test.name, Status.CRASHED, describe_status(status))
        else:
            verdicts[self.current] = Verdict(test.name, Status.CRASHED, "process exited before reporting (exit code 0)")
        if limits.fail_fast:
            return next_segment(self.job, self.current), True
        return self.current + 1, True


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)} before reporting"


def next_segment(job: Job, i: int) -> int | None:
    """Start of the first segment after test i (Job.segments), or None."""
    return next((s for s in job.segments if s > i), None)


def budget_of(job: Job, i: int) -> TimeBudget | None:
    """The budget of the part of the test list that test i belongs to (Job.budgets), if any."""
    if not job.budgets or i >= len(job.tests):
        return None
    return job.budgets[bisect.bisect_right(job.segments, i)]


def out_of_budget(job: Job, i: int, verdicts: list) -> int | None:
    """Test i's part of the list ran out of time (Job.budgets): test i times out, the rest of its
    part is not run (unset verdicts), and the run goes on at the next part."""
    budget = budget_of(job, i)
    why = f"the sample's time budget of {budget.seconds:g}s ran out"
    verdicts[i] = Verdict(job.tests[i].name, Status.TIMEOUT, why, budget.spent)
    return next_segment(job, i)
