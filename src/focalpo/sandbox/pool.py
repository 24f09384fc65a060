"""Parent side of the sandbox: slots (one zygote each), per-test deadlines, judging, the pool.

A `_Slot` owns one zygote. To run a job it creates three pipes (results, stdout, stderr), sends
the zygote the job (tests stripped of their expected outputs) with the pipes' write ends, gets
back a pidfd of the forked job, and watches the pipes against a per-test deadline. Each result
frame is decoded with the safe unpickler and judged here, in trusted code. If the job overruns a
deadline it is killed through the pidfd (its whole PID namespace goes with it) and, when tests
remain, a fresh job continues from the next test; the same happens after a crash, so every test
gets its own verdict.
"""

from __future__ import annotations

import atexit
import bisect
import functools
import heapq
import json
import math
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Sized

from focalpo.sandbox._channel import recv_msg, send_msg, send_raw
from focalpo.sandbox.asserts import rewrite_asserts, rewrite_unittest
from focalpo.sandbox.feedback import CoverageLines, format_traceback, parse_traceback
from focalpo.sandbox.environment import ModuleCheck
from focalpo.sandbox.isolation import import_locations
from focalpo.sandbox.jobfiles import PROGRAM_MODULE, check_job_layout
from focalpo.sandbox.oracles import judge_call
from focalpo.sandbox.types import (
    NO_EXPECTED,
    AssertTest,
    CallTest,
    ExecResult,
    Limits,
    Status,
    StdioTest,
    TestCase,
    UnittestTest,
    Verdict,
)
from focalpo.sandbox.wire import FrameReader, Pickled, safe_loads, same_bytes

DEFAULT_PRELOAD = (
    "math", "cmath", "re", "string", "collections", "itertools", "functools", "heapq", "bisect",
    "typing", "copy", "random", "statistics", "hashlib", "datetime", "fractions", "decimal",
    "operator", "json", "unittest",
)  # fmt: skip
# Imported by a zygote just before the first job whose program mentions them. A bigger zygote
# makes every fork dearer (numpy: ~0.4 ms of CPU a job, ~8 % of a short HumanEval job), so
# benchmarks whose programs never use numpy do not pay for it; once one does, it is warm.
ON_DEMAND_PRELOAD = ("numpy",)

_CODES = {"exception": Status.EXCEPTION, "timeout": Status.TIMEOUT, "memory": Status.MEMORY, "fail": Status.WRONG_ANSWER}


class TimeBudget:
    """Wall seconds that a list of tests may take in all, program loads included, however many
    processes and chunks run it: evalplus gives each sample's base (and plus) tests one process
    and kills it after min(60 s, sum of the per-test limits) + 2 s, so one slow sample cannot
    hold a worker for minutes. Jobs that run parts of one list share one budget (`Job.budgets`);
    the test running when it runs out gets a `timeout` verdict, the rest of its list `not_run`.
    Thread-safe: chunks of one list may run on several slots at once."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._spent = 0.0
        self._lock = threading.Lock()

    def charge(self, seconds: float) -> float:
        """Count `seconds` as spent; returns the seconds left (negative once overrun)."""
        with self._lock:
            self._spent += seconds
            return self.seconds - self._spent

    @property
    def spent(self) -> float:
        return self._spent

    @property
    def left(self) -> float:
        """Seconds left (negative once overrun)."""
        return self.seconds - self._spent

    def __repr__(self) -> str:
        return f"TimeBudget({self.seconds:g}s, {self._spent:.3g}s spent)"


@dataclass
class Job:
    """One program and the tests to run it against.

    `module` is the program's module name (`__name__`, importable by tests: `from fib import fib`);
    `files` are extra text files (relative path -> text) written into the job's working directory,
    which is then first on sys.path; `coverage` measures the program file's line coverage
    (`ExecResult.coverage`). With files or coverage the program is a real file, `<module>.py`.
    `imports` names modules the zygote imports (once, before forking) so the job finds them warm.
    A bad module name or file path raises ValueError here.
    """

    program: str
    tests: Sequence[TestCase]
    limits: Limits | None = None
    return_outputs: bool = False
    cost: float = 0.0  # estimated seconds; the pool starts costly jobs first (longest-first scheduling)
    # Jobs that share a group are parts of one test list: under fail_fast, once one of them fails
    # the pool skips those not yet started (their tests are NOT_RUN), as one job would have stopped.
    group: Any = None
    # Indices where an independent part of the test list starts (a benchmark's plus tests after
    # its base tests): under fail_fast a failure stops only its own part, and the run goes on at
    # the next part, in a fresh process. One job for both parts saves a fork and a program load.
    segments: Sequence[int] = ()
    module: str = PROGRAM_MODULE
    files: Mapping[str, str] | None = None
    coverage: bool = False
    # Modules the zygote should import (once) before forking this job, e.g. a BigCodeBench
    # task's libraries: jobs then find them warm instead of importing them each time.
    imports: Sequence[str] = ()
    # One TimeBudget per segment (the first for the tests before segments[0]), or none: the wall
    # time each part of the test list may take in all, shared with other jobs that run chunks of it.
    budgets: Sequence[TimeBudget] = ()

    def __post_init__(self) -> None:
        if self.module != PROGRAM_MODULE or self.files is not None:
            self.files = check_job_layout(self.module, self.files)
        if self.budgets and len(self.budgets) != len(self.segments) + 1:
            raise ValueError(f"Job.budgets: one per segment ({len(self.segments) + 1}), got {len(self.budgets)}")


class SandboxError(RuntimeError):
    """The sandbox machinery itself failed (not the program under test)."""


def _job_side(test: TestCase) -> tuple:
    """What the job may know of a test: never the expected output."""
    if isinstance(test, CallTest):
        return ("call", test.entry_point, test.args)
    if isinstance(test, AssertTest):
        return ("assert", rewrite_asserts(test.setup) if test.setup else "", rewrite_asserts(test.code))
    if isinstance(test, StdioTest):
        return ("stdio", test.stdin)
    if isinstance(test, UnittestTest):
        return ("unittest", rewrite_unittest(test.module), test.method, test.namespace)
    raise TypeError(f"not a test case: {type(test).__name__}")


def _source_of(job: Job, test: TestCase | None) -> Callable[[str, str], str]:
    """Where a traceback frame's line comes from: the caller's own texts (not the rewritten
    asserts the job ran; rewriting keeps line numbers)."""

    def source(kind: str, name: str) -> str:
        if kind == "program":
            return job.program
        if kind == "file":
            return (job.files or {}).get(name, "")
        if isinstance(test, AssertTest):
            return {"test.py": test.code, "test_setup.py": test.setup}.get(name, "")
        return test.module if isinstance(test, UnittestTest) and name == "test_module.py" else ""

    return source


def _normalise_stdout(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def _judge(test: TestCase, code: str, message: str, payload: Any, want_value: bool) -> tuple[str, str, Any]:
    """Status, message and (for call tests, when needed) decoded output of one reported test.

    Trusted code. A call test's output arrives as pickle bytes: equal to the expected output's
    bytes means a pass without decoding anything; otherwise it is decoded by `safe_loads` and judged.
    """
    if code != "ok":
        return _CODES.get(code, Status.CRASHED), message, None
    if isinstance(test, CallTest):
        if not isinstance(payload, (bytes, bytearray)):
            return Status.CRASHED, "malformed call report", None
        exp = test.expected
        if isinstance(exp, Pickled) and test.oracle is None and not want_value and same_bytes(payload, exp.data):
            return Status.PASS, "", None  # not decoded: nobody asked for the value
        try:
            value = safe_loads(payload)
        except Exception:  # noqa: BLE001 - forged or corrupt bytes
            return Status.CRASHED, "the job returned an undecodable value", None
        if exp is NO_EXPECTED:
            return Status.PASS, "", value
        ok, why = judge_call(test, value)
        return (Status.PASS, "", value) if ok else (Status.WRONG_ANSWER, why, value)
    if isinstance(test, StdioTest):
        if not (isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[0], str)):
            return Status.CRASHED, "malformed stdout report", None
        text, truncated = payload
        if truncated:
            return Status.WRONG_ANSWER, "stdout exceeded the output limit", payload
        if _normalise_stdout(text) == _normalise_stdout(test.expected_stdout):
            return Status.PASS, "", payload
        return Status.WRONG_ANSWER, f"stdout differs (got {len(text)} chars)", payload
    return Status.PASS, "", payload


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)} before reporting"


class _Tail:
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


_SRC = str(Path(__file__).resolve().parents[2])  # the directory holding the focalpo package


def _zygote_env() -> dict[str, str]:
    # Absolute: the zygote starts in another directory (see _Slot._spawn_zygote).
    paths = [_SRC] + [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        # Preloaded numpy would otherwise start an OpenBLAS thread pool in the zygote, whose
        # threads spin on a core and do not survive the fork anyway (jobs get the same setting).
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class _Attempt:
    """State of one forked job process working through tests[start:]."""

    def __init__(self, start: int, job: Job, covered: CoverageLines | None):
        self.start = start
        self.job = job
        self.covered = covered  # where "cov" frames go (Job.coverage), shared by a run's attempts
        self.traceback: tuple[int, tuple] | None = None  # (test index or -1, parsed "tb" frame)
        self.current = start  # next test whose report is awaited
        self.loaded = False
        self.finished = False  # the job said "done" (or load failed and was handled)
        self.resume: int | None = None  # where a finished run goes on (the next segment after a fail_fast stop)
        self.stop_reason = ""  # why we killed it: "timeout", "fail_fast", "protocol"
        self.batch = True  # the job may hold passing results back for a few milliseconds
        self.extended = -1  # last test whose big return value was announced ("ran")
        self.ran_seconds = 0.0  # that test's call duration, from the notice
        self.charged_at = time.monotonic()  # time up to here is charged to a budget (Job.budgets)

    def charge(self) -> float:
        """Charge the time since the last charge to the running test's budget; seconds it has left."""
        now = time.monotonic()
        budget, spent, self.charged_at = _budget_of(self.job, self.current), now - self.charged_at, now
        return math.inf if budget is None else budget.charge(spent)


class _Slot:
    """One zygote process and the jobs it runs, one at a time."""

    def __init__(
        self, index: int, network: bool, preload: Sequence[str], wait: bool = True,
        on_demand: Sequence[str] = ON_DEMAND_PRELOAD, scratch: int = Limits.scratch,
    ):  # fmt: skip
        self.index = index
        self.config = json.dumps({
            "network": network, "preload": list(preload), "scratch": scratch,
            # Jobs see what this process imports from, wherever it lives (a venv under /tmp too).
            "paths": import_locations(), "sys_path": [p for p in sys.path if os.path.isabs(p)],
        })  # fmt: skip
        self.preload = frozenset(preload)
        self.on_demand = [m for m in on_demand if m not in self.preload]
        self.ready = False
        self.closed = False  # by `close`: no restart, no retry
        self._isolation: dict = {}
        self._hello_lock = threading.Lock()  # `isolation` may be read while another thread runs a job
        self._spawn_zygote()
        if wait:
            self.wait_ready()

    def _spawn_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cmd = [sys.executable, "-m", "focalpo.sandbox.zygote", str(theirs.fileno()), str(self.index), self.config]
        self.proc = subprocess.Popen(
            cmd, pass_fds=[theirs.fileno()], env=_zygote_env(), stdin=subprocess.DEVNULL, close_fds=True,
            # `-m` puts the working directory first on sys.path: the caller's could hold a `types.py`
            # or `random.py` that the zygote would import instead of the standard library's. Jobs
            # still get the caller's own sys.path entries after the interpreter's (`config`).
            cwd=_SRC,
        )
        theirs.close()
        self.sock = ours
        self.ready = False
        self.imported: set[str] = set()  # modules this zygote was asked to import (on demand or Job.imports)

    def wait_ready(self) -> None:
        """Wait for the zygote's hello (it isolates itself and imports the preload first)."""
        if self.ready:
            return
        with self._hello_lock:
            if self.ready:
                return
            try:
                (kind, info), _ = recv_msg(self.sock)
            except EOFError:
                raise SandboxError(f"sandbox zygote failed to start (exit code {self.proc.wait()})") from None
            self._isolation, self.ready = info, True

    @property
    def isolation(self) -> dict:
        self.wait_ready()
        return self._isolation

    def close(self) -> None:
        """End the zygote, and with it a job it may be running, for good."""
        self.closed = True
        self._stop()

    def _stop(self) -> None:
        if not self.ready and self.proc.poll() is None:
            self.proc.kill()  # still starting up: it holds no job, and would only fail to say hello
        try:
            # The zygote sees the channel end at once, even while it waits for a job: it then
            # kills the job and exits, rather than let the job run on to its time limit.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        finally:
            self.sock.close()

    # ----------------------------------------------------------------------------------------------

    def run(self, job: Job, default_limits: Limits) -> ExecResult:
        self.wait_ready()
        limits = job.limits or default_limits
        tests = list(job.tests)
        side = [_job_side(t) for t in tests]
        verdicts: list[Verdict | None] = [None] * len(tests)
        outputs: list[Any] | None = [None] * len(tests) if job.return_outputs else None
        out, err = _Tail(limits.output), _Tail(limits.output)
        res = ExecResult(verdicts=[], isolation=self.isolation)
        covered = CoverageLines(job.program) if job.coverage else None
        t0 = time.perf_counter()
        start: int | None = 0
        batch = True
        while start is not None:
            budget = _budget_of(job, start)
            if budget is not None and budget.left <= 0:
                start = _out_of_budget(job, start, verdicts)  # other chunks of this list spent it
            else:
                start, batch = self._attempt(job, tests, side, start, batch, limits, verdicts, outputs, out, err, res, covered)
            if start is not None and start >= len(tests):
                start = None
        if covered is not None:
            res.coverage = covered.report()
        res.verdicts = [v or Verdict(t.name, Status.NOT_RUN) for v, t in zip(verdicts, tests)]
        res.outputs = outputs
        res.stdout, res.stderr = out.text(), err.text()
        res.stdout_truncated, res.stderr_truncated = out.truncated, err.truncated
        res.duration = time.perf_counter() - t0
        return res

    def _attempt(self, job, tests, side, start, batch, limits, verdicts, outputs, out, err, res, covered):
        """Run tests[start:] in one job process.

        Returns (where a follow-up job must start or None, whether it may batch its reports)."""
        spec = {
            "program": job.program,
            "tests": [(i, side[i], limits.time_for(tests[i])) for i in range(start, len(tests))],
            "limits": _limits_dict(limits),
            "load_time": limits.load_time,
            "needs_namespace": any(s[0] != "stdio" for s in side) or not side,
            "batch": batch,
        }
        if job.module != PROGRAM_MODULE or job.files or job.coverage:  # keys the job looks for, only when set
            _add_layout(spec, job)
        wanted = [m for m in self.on_demand if m not in self.imported and m in job.program]
        wanted += [m for m in dict.fromkeys(job.imports) if m not in self.imported and m not in self.preload and m not in wanted]
        self.imported.update(wanted)  # the zygote imports these before it forks this job
        # The zygote reads only the small header; the job decodes its own spec (see zygote._serve).
        header = (spec["limits"]["scratch"], wanted)
        body = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
        pipes = [os.pipe() for _ in range(3)]
        try:
            send_msg(self.sock, header, [w for _, w in pipes])
            send_raw(self.sock, body)
            (kind, _pid), fds = recv_msg(self.sock)
        except (OSError, EOFError) as e:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            self._restart(f"zygote lost while starting a job: {e}")
            raise SandboxError(f"sandbox zygote died ({e}); it was restarted, retry the job") from None
        for _, w in pipes:
            os.close(w)
        pidfd = fds[0]
        att = _Attempt(start, job, covered)
        att.batch = batch
        try:
            status = self._watch(att, pidfd, [r for r, _ in pipes], tests, limits, verdicts, outputs, out, err, res)
        finally:
            os.close(pidfd)
            for r, _ in pipes:
                try:
                    os.close(r)
                except OSError:
                    pass
        return self._conclude(att, status, tests, limits, verdicts, res)

    def _watch(self, att, pidfd, readers, tests, limits, verdicts, outputs, out, err, res) -> int | None:
        r_res, r_out, r_err = readers
        sel = selectors.DefaultSelector()
        for fd in readers:
            sel.register(fd, selectors.EVENT_READ)
        sel.register(self.sock, selectors.EVENT_READ)
        frames = FrameReader()
        deadline = time.monotonic() + limits.load_time + limits.grace
        open_fds, status, killed = set(readers), None, False
        transfer: tuple[float, float] | None = None  # (hard cap, idle allowance) while a big value arrives

        def handle(raw_frames: list) -> None:
            nonlocal deadline, transfer
            for raw in raw_frames:
                if killed:
                    break
                verdict = self._on_frame(raw, att, tests, limits, verdicts, outputs, res)
                if verdict == "extend":
                    # The job says the call is over and a big value follows. The notice is
                    # untrusted (a program can write it), so it buys no compute time: the value's
                    # bytes must start, and keep, flowing within the test's own allowance, and
                    # all of it must arrive by transfer_time.
                    now = time.monotonic()
                    idle = limits.time_for(tests[att.current]) + limits.grace
                    transfer = (now + limits.transfer_time, idle)
                    deadline = min(transfer[0], now + idle)
                elif verdict:
                    kill(verdict)
                else:
                    transfer = None
                    nxt = tests[att.current] if att.current < len(tests) else None
                    budget = limits.time_for(nxt) if nxt is not None else limits.test_time
                    deadline = time.monotonic() + budget + limits.grace

        def kill(reason: str) -> None:
            nonlocal killed
            if not killed:
                att.stop_reason = reason
                killed = True
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        try:
            while open_fds or status is None:
                if self.closed:  # its zygote kills the job: the pipes' ends woke us
                    raise SandboxError("the pool was closed while a job ran")
                # The time since the last wake-up went to the test that was running: charge it
                # before this wake-up's reports move on to the next one.
                budget_end = time.monotonic() + att.charge()
                if not killed and budget_end <= time.monotonic():
                    kill("budget")
                timeout = None if killed else max(0.0, min(deadline, budget_end) - time.monotonic())
                events = sel.select(timeout)
                if not events and not killed and time.monotonic() >= min(deadline, budget_end):
                    kill("timeout" if deadline <= budget_end else "budget")
                    continue
                for key, _ in events:
                    fd = key.fd
                    if fd == self.sock.fileno():
                        try:
                            (kind, status), _ = recv_msg(self.sock)
                        except (EOFError, OSError):
                            kill("zygote")
                            self._restart("zygote died during a job")
                            status = -1
                        sel.unregister(fd)
                        continue
                    target = frames.target() if fd == r_res else None
                    if target is not None:  # a big raw frame: read straight into its buffer
                        with target:
                            got = os.readv(fd, [target])
                        data = b"" if not got else None
                    else:
                        data = os.read(fd, 1 << 20)
                    if data is not None and not data:
                        sel.unregister(fd)
                        open_fds.discard(fd)
                        continue
                    if fd == r_out:
                        out.add(data)
                    elif fd == r_err:
                        err.add(data)
                    else:
                        if transfer is not None:  # bytes keep coming: the transfer is alive
                            deadline = min(transfer[0], time.monotonic() + transfer[1])
                        try:
                            raw_frames = frames.feed(data) if data is not None else frames.filled(got)
                            while True:
                                handle(raw_frames)
                                if killed or not frames.blocked:
                                    break
                                # A raw frame is next: only as the announced test's report.
                                if att.extended != att.current or att.current >= len(tests):
                                    kill("protocol")
                                    break
                                frames.allow_raw()
                                raw_frames = frames.feed(b"")
                        except ValueError:
                            kill("protocol")
        finally:
            att.charge()
            sel.close()
        return status

    def _on_frame(self, raw, att, tests, limits, verdicts, outputs, res) -> str:
        """Handle one result frame; returns a reason to kill the job, or ''."""
        if type(raw) is bytearray:  # a big return value's pickle: the report of the announced test
            if not (att.loaded and att.extended == att.current < len(tests)):
                return "protocol"
            return self._on_test(att, att.current, "ok", "", att.ran_seconds, raw, tests, limits, verdicts, outputs)
        try:
            msg = safe_loads(raw)
        except Exception:  # noqa: BLE001 - forged or corrupt bytes
            return "protocol"
        if not isinstance(msg, tuple) or not msg:
            return "protocol"
        tag = msg[0]
        if tag == "load" and len(msg) == 4 and not att.loaded:
            _, code, message, _dt = msg
            if code == "ok":
                att.loaded = True
                return ""
            res.load_error = str(message)
            if att.traceback is not None and att.traceback[0] == -1:
                res.load_traceback = format_traceback(*att.traceback[1], _source_of(att.job, None))
            status = _CODES.get(code, Status.EXCEPTION)
            for i in range(att.start, len(tests)):
                verdicts[i] = Verdict(tests[i].name, status, f"program failed to load: {message}")
            att.finished = True
            return ""
        if tag == "test" and len(msg) == 6 and att.loaded and msg[1] == att.current:
            _, i, code, message, dt, payload = msg
            if not isinstance(code, str) or not isinstance(message, str) or not isinstance(dt, (int, float)):
                return "protocol"
            return self._on_test(att, i, code, message, dt, payload, tests, limits, verdicts, outputs)
        if tag == "oks" and len(msg) == 4 and att.loaded and msg[1] == att.current:
            return self._on_oks(att, msg[2], msg[3], tests, limits, verdicts, outputs)
        if tag == "ran" and len(msg) == 3 and att.loaded and msg[1] == att.current and att.extended < att.current:
            if not isinstance(msg[2], (int, float)):
                return "protocol"
            att.extended, att.ran_seconds = att.current, float(msg[2])  # one notice per test: a second one is a forgery
            return "extend"  # the call finished; its (large) value is on the way, as a raw frame
        if tag == "oversized" and att.loaded and att.current < len(tests):
            verdicts[att.current] = Verdict(tests[att.current].name, Status.WRONG_ANSWER, "output too large")
            att.current += 1
            return ""
        if tag == "done" and att.loaded and att.current == len(tests):
            att.finished = True
            return ""
        if tag == "tb" and len(msg) == 4 and type(msg[1]) is int and msg[1] == (att.current if att.loaded else -1):
            parsed = parse_traceback(msg)  # only failing tests send one: not the hot path
            att.traceback = None if parsed is None else (msg[1], parsed)
            return "" if parsed is not None else "protocol"
        if tag == "cov" and len(msg) == 2 and att.covered is not None:
            return "" if att.covered.add(msg[1]) else "protocol"
        return "protocol"

    def _on_oks(self, att, seconds, payloads, tests, limits, verdicts, outputs) -> str:
        """Judge a batch of tests that ran to completion, from the current one on."""
        if type(seconds) is not list or type(payloads) is not list or len(seconds) != len(payloads):
            return "protocol"
        start = att.current
        if start + len(payloads) > len(tests) or not all(type(dt) is float for dt in seconds):
            return "protocol"
        want_value = outputs is not None
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
                att.current += 1
                continue
            stop = self._on_test(att, i, "ok", "", seconds[k], payload, tests, limits, verdicts, outputs)
            if stop:
                return stop
        return ""

    def _on_test(self, att, i, code, message, dt, payload, tests, limits, verdicts, outputs) -> str:
        """Judge the report of test i (the current one); returns "fail_fast" or ''."""
        status, why, value = _judge(tests[i], code, message, payload, outputs is not None)
        if status == Status.TIMEOUT:
            why = f"exceeded {limits.time_for(tests[i]):g}s"
        verdicts[i] = Verdict(tests[i].name, status, why, float(dt))
        if att.traceback is not None:
            if att.traceback[0] == i and status in (Status.EXCEPTION, Status.WRONG_ANSWER):
                verdicts[i].traceback = format_traceback(*att.traceback[1], _source_of(att.job, tests[i]))
            att.traceback = None
        if outputs is not None and code == "ok":
            outputs[i] = value
        att.current += 1
        if limits.fail_fast and status != Status.PASS:
            att.finished = True
            att.resume = _next_segment(att.job, i)
            return "fail_fast"
        return ""

    def _conclude(self, att, status, tests, limits, verdicts, res) -> tuple[int | None, bool]:
        if att.finished:
            return att.resume, True
        if att.stop_reason == "budget":  # no re-run to pin the verdict: the time is spent
            return _out_of_budget(att.job, att.current, verdicts), True
        if not att.loaded:
            if att.stop_reason == "timeout":
                st, why = Status.TIMEOUT, f"program load exceeded {limits.load_time:g}s"
            elif att.stop_reason == "protocol":
                st, why = Status.CRASHED, "the job wrote an invalid result frame while loading"
            else:
                st, why = Status.CRASHED, "program " + (_describe_status(status) if status and status > 0 else "vanished") + " while loading"
            res.load_error = why
            for i in range(att.start, len(tests)):
                verdicts[i] = Verdict(tests[i].name, st, why)
            return None, True
        if att.current >= len(tests):
            return None, True
        test = tests[att.current]
        if att.batch and att.stop_reason != "protocol":
            # Passing results may have been pending in the job's batch when it hung or died, so
            # we cannot tell which test did it. Run the unreported tests again, reporting each at
            # once, to pin the verdict on the right one.
            return att.current, False
        if att.stop_reason == "timeout":
            verdicts[att.current] = Verdict(test.name, Status.TIMEOUT, f"exceeded {limits.time_for(test):g}s (killed)", limits.time_for(test))
        elif att.stop_reason == "protocol":
            verdicts[att.current] = Verdict(test.name, Status.CRASHED, "the job wrote an invalid result frame")
        elif status is not None and status > 0:
            verdicts[att.current] = Verdict(test.name, Status.CRASHED, _describe_status(status))
        else:
            verdicts[att.current] = Verdict(test.name, Status.CRASHED, "process exited before reporting (exit code 0)")
        if limits.fail_fast:
            return _next_segment(att.job, att.current), True
        return att.current + 1, True

    def _restart(self, why: str) -> None:
        if self.closed:
            raise SandboxError("the pool was closed while a job ran")
        try:
            self._stop()
        except Exception:  # noqa: BLE001
            pass
        self._spawn_zygote()
        self.wait_ready()


def _next_segment(job: Job, i: int) -> int | None:
    """Start of the first segment after test i (Job.segments), or None."""
    return next((s for s in job.segments if s > i), None)


def _budget_of(job: Job, i: int) -> TimeBudget | None:
    """The budget of the part of the test list that test i belongs to (Job.budgets), if any."""
    if not job.budgets or i >= len(job.tests):
        return None
    return job.budgets[bisect.bisect_right(job.segments, i)]


def _out_of_budget(job: Job, i: int, verdicts: list) -> int | None:
    """Test i's part of the list ran out of time (Job.budgets): test i times out, the rest of its
    part is not run (unset verdicts), and the run goes on at the next part."""
    budget = _budget_of(job, i)
    why = f"the sample's time budget of {budget.seconds:g}s ran out"
    verdicts[i] = Verdict(job.tests[i].name, Status.TIMEOUT, why, budget.spent)
    return _next_segment(job, i)


@functools.lru_cache(maxsize=64)
def _limits_dict(limits: Limits) -> dict:
    """`asdict(limits)` for job specs, once per Limits value (it was ~0.1 ms of each job)."""
    return asdict(limits)


def _add_layout(spec: dict, job: Job) -> None:
    """The optional spec keys of a job with a module name, extra files or coverage."""
    files = check_job_layout(job.module, job.files)  # again: a Job's fields may be reassigned
    if job.module != PROGRAM_MODULE:
        spec["module"] = job.module
    if files:
        spec["files"] = files
    if job.coverage:
        spec["coverage"] = True


class ExecPool:
    """Runs many jobs on `workers` sandbox slots (default: all cores), judging in this process.

    >>> with ExecPool(workers=2) as pool:
    ...     results = pool.map([Job(program, tests), ...])

    `preload`: modules every zygote imports at start, so jobs find them warm. `on_demand`: modules
    a zygote imports just before the first job whose program text mentions them (a cheap
    substring test: a program that imports one by a computed name imports it itself, cold).
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits = Limits(),
        preload: Sequence[str] = DEFAULT_PRELOAD,
        progress: str | None = None,
        on_demand: Sequence[str] = ON_DEMAND_PRELOAD,
    ):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.limits = limits
        self.progress = progress
        # The zygotes start side by side and in the background: the first job (or `isolation`)
        # waits for them, so a caller can load its data meanwhile.
        self._slots = [
            _Slot(i, limits.network, preload, wait=False, on_demand=on_demand, scratch=limits.scratch)
            for i in range(self.workers)
        ]
        self._modules = ModuleCheck()  # a module a job could not import: missing here, or a fault?

    @property
    def isolation(self) -> dict:
        return self._slots[0].isolation

    def imap(self, jobs: Iterable[Job]) -> Iterator[tuple[int, ExecResult]]:
        """Yields (job index, result) as jobs finish, in completion order.

        Jobs are started in decreasing `cost` order (stable), so the longest ones do not end up
        alone at the tail of the run while other workers idle.
        """
        import queue

        pending = _Pending()
        for job in jobs:
            pending.add(job)
        pending.close()
        done: queue.Queue = queue.Queue()
        self._start(pending, lambda i, r: done.put((i, r)))
        for _ in range(pending.added):
            i, r = done.get()
            if i < 0:
                raise r
            yield i, r

    def _start(self, pending: _Pending, deliver: Callable[[int, Any], None]) -> list[threading.Thread]:
        """Start one thread per slot working through `pending`, costly jobs first, until it is
        closed and empty. Each thread calls deliver(index, result) itself as a job finishes, or
        deliver(-1, exception) and stops; once a job raised, no thread starts another. Returns
        the threads."""
        if not self._slots:
            raise SandboxError("the pool is closed")
        lock = threading.Lock()
        failed_groups: set = set()

        def worker(slot: _Slot) -> None:
            while True:
                item = pending.take()
                if item is None:
                    return
                i, job = item
                with lock:
                    skip = job.group is not None and job.group in failed_groups
                if skip:
                    deliver(i, _skipped(job, slot.isolation))
                    continue
                try:
                    result = self._run_with_retry(slot, job)
                    self._modules.check(result, functools.partial(self._probe, slot))
                except BaseException as e:  # noqa: BLE001 - surfaced in the caller's thread
                    pending.cancel()
                    deliver(-1, e)
                    return
                if job.group is not None and not result.passed and (job.limits or self.limits).fail_fast:
                    with lock:
                        failed_groups.add(job.group)
                deliver(i, result)

        threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in self._slots]
        for t in threads:
            t.start()
        return threads

    def _run_with_retry(self, slot: _Slot, job: Job) -> ExecResult:
        try:
            return slot.run(job, self.limits)
        except SandboxError:
            if slot.closed:
                raise
            return slot.run(job, self.limits)  # the zygote was restarted; one more try

    def _probe(self, slot: _Slot, program: str, tests: Sequence[TestCase]) -> ExecResult:
        return self._run_with_retry(slot, Job(program, tests, return_outputs=True))

    def map(self, jobs: Iterable[Job], desc: str | None = None) -> list[ExecResult]:
        """Results in job order, with a progress bar when `desc` (or the pool's `progress`) is set.

        `jobs` may be a generator: jobs start as it yields them, costliest waiting job first, so a
        caller can go on preparing jobs (loading data) while the first ones run. If it raises,
        no further job starts, the running ones finish, and the error propagates (a
        KeyboardInterrupt at once: the running jobs end when the pool is closed).

        The slots' threads file each result themselves: the calling thread only waits for them to
        end, instead of waking (and taking the GIL) once per job as `imap`'s consumer does."""
        results: list[ExecResult | None] = []
        errors: list[BaseException] = []
        label = desc or self.progress
        sized = isinstance(jobs, Sized)
        bar = _progress(len(jobs) if sized else None, label)
        bar_lock = threading.Lock()

        def deliver(i: int, r) -> None:
            if i < 0:
                errors.append(r)
                return
            results[i] = r
            if bar is not None:
                with bar_lock:
                    bar.update(1)

        pending = _Pending()
        # A list is queued whole before any job starts, so that the costliest starts first; a
        # generator's jobs start as they come.
        threads = [] if sized else self._start(pending, deliver)
        try:
            try:
                for job in jobs:
                    if errors:  # a job raised: nothing more will start
                        break
                    results.append(None)  # before the job can start and deliver into it
                    pending.add(job)
            except BaseException as e:
                pending.cancel()
                if not isinstance(e, Exception):
                    threads = []  # Ctrl-C: do not wait for the running jobs (closing the pool ends them)
                raise
            finally:
                pending.close()
            if sized:
                threads = self._start(pending, deliver)
            elif bar is not None:  # the total is known now
                with bar_lock:
                    bar.total = len(results)
                    bar.refresh()
        finally:
            for t in threads:
                t.join()
            if bar is not None:
                bar.close()
        if errors:
            raise errors[0]
        if any(r is None for r in results):  # a slot's thread died outside a job (in deliver)
            raise SandboxError("a pool thread ended before its jobs did")
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for s in self._slots:
            s.close()
        self._slots = []

    def __enter__(self) -> "ExecPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Pending:
    """Jobs not yet started, costliest first (equal costs in the order added). Jobs may be added
    while the slots' threads take them; `take` waits for one until `close`."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Job]] = []
        self._cond = threading.Condition()
        self.added = 0
        self._closed = self._cancelled = False

    def add(self, job: Job) -> int:
        """Queue a job; returns its index (the order of `add` calls)."""
        with self._cond:
            i = self.added
            self.added += 1
            if not self._cancelled:
                heapq.heappush(self._heap, (-job.cost, i, job))
                self._cond.notify()
            return i

    def close(self) -> None:
        """No more jobs will come: `take` returns None once the heap is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Start nothing more: drop the jobs still waiting, and close."""
        with self._cond:
            self._heap.clear()
            self._closed = self._cancelled = True
            self._cond.notify_all()

    def take(self) -> tuple[int, Job] | None:
        with self._cond:
            while not self._heap and not self._closed:
                self._cond.wait()
            if not self._heap:
                return None
            _, i, job = heapq.heappop(self._heap)
            return i, job


def _skipped(job: Job, isolation: dict) -> ExecResult:
    why = "not run: another part of this test list failed first"
    return ExecResult([Verdict(t.name, Status.NOT_RUN, why) for t in job.tests], isolation=isolation)


def _progress(total: int, desc: str | None):
    if not desc:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="job", dynamic_ncols=True)


_default: dict[str, Any] = {}
_default_lock = threading.Lock()
_default_modules = ModuleCheck()


def execute(
    program: str,
    tests: Sequence[TestCase],
    limits: Limits = Limits(),
    *,
    return_outputs: bool = False,
    module: str = PROGRAM_MODULE,
    files: Mapping[str, str] | None = None,
    coverage: bool = False,
) -> ExecResult:
    """Run one program against its tests in a fresh sandboxed process (see `focalpo.sandbox`);
    `module`, `files` and `coverage` as in `Job`.

    Uses a lazily started single-slot pool that lives until the interpreter exits.
    """
    job = Job(program, tests, limits, return_outputs, module=module, files=files, coverage=coverage)
    with _default_lock:
        slot = _default.get(limits.network)
        if slot is None:
            slot = _default[limits.network] = _Slot(0, limits.network, DEFAULT_PRELOAD)
            atexit.register(slot.close)

        def run(job: Job) -> ExecResult:
            try:
                return slot.run(job, limits)
            except SandboxError:
                return slot.run(job, limits)

        result = run(job)
        _default_modules.check(result, lambda program, tests: run(Job(program, tests, return_outputs=True)))
        return result
