"""The harness inside one sandboxed job process (forked from the zygote; never imported by users).

`run_job(spec, result_fd)`, in a process that `focalpo.sandbox.confine` confined (session,
rlimits, uid, environment, working directory), imports the untrusted program and runs its tests
one by one, writing one frame per test to `result_fd` (see `focalpo.sandbox.wire`). It judges
nothing that the parent can judge: call tests send their return value, stdio tests their stdout.
Assertion and unittest tests can only be decided here, next to the program, with the guards of
`focalpo.sandbox.guards`; see the isolation notes in `focalpo.sandbox`.

Each test runs under an in-process timer (SIGALRM -> `TimeLimitExceeded`); a program that blocks
or swallows it is killed by the parent at the hard deadline, which this module cannot influence.

Optional, only when the spec asks (the common case pays nothing): the program as a real file
`<workdir>/<module>.py` next to extra files the job writes itself (spec "files"), line coverage of
that file with coverage.py ("coverage": "cov" frames of newly executed lines after the load and
after every test, so lines survive a hard kill), and, for failing tests only, a "tb" frame with
the failure's frames in the program, the test code and the extra files, formatted by the parent.

Why one file of ~700 lines: all of it is the harness inside the job, which runs beside untrusted
code under rules every part must keep (the harness's own builtins, functions bound before the
program runs, nothing imported that the zygote has not imported: every module is in every job's
heap). The process confinement that does not share these rules lives in `confine.py`.
"""

from __future__ import annotations

from focalpo.sandbox._builtins import BUILTINS as __builtins__  # noqa: F401 - a program's patches never reach the harness

import builtins
import fcntl
import io
import os
import pickle
import random
import signal
import sys
import time
import traceback
import types
import unittest
import warnings

from focalpo.sandbox import guards
from focalpo.sandbox.jobfiles import PROGRAM_MODULE  # default __name__ of the program: not "__main__"
from focalpo.sandbox.confine import enter_environment
from focalpo.sandbox.wire import HEADER, RAW, SCALAR_TYPES, Opaque, plain, to_plain

# Bound before any untrusted code runs, so a program that clobbers `os.write` & co. (as
# evalplus's reliability guard does to the *program's* view) cannot break the reporting path.
_write = os.write
_dumps = pickle.dumps
_perf = time.perf_counter
_setitimer = signal.setitimer
_exit = os._exit

TEST_MODULE = "test_module"  # __name__ of a unittest test module
TEST_FILES = frozenset({"test.py", "test_setup.py", TEST_MODULE + ".py"})  # file names of test code
_UNSET = object()  # a name the program's namespace does not hold (_Runner._share)
TRACEBACK_FRAMES = 8  # frames of a failure's traceback sent to the parent (the last ones)
TRACEBACK_CHARS = 2000
MAX_PAYLOAD = 1 << 30
BIG_OUTPUT = 10_000  # len() above which a return value is announced before it is serialised


class TimeLimitExceeded(BaseException):
    """Raised by the in-process timer; a BaseException so `except Exception` in programs misses it."""


def _on_alarm(signum, frame):
    raise TimeLimitExceeded()


def _frame(obj) -> bytes:
    data = _dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) > MAX_PAYLOAD:
        data = _dumps(("oversized", len(data)), protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view) :]


class _Reporter:
    """Writes result frames; in batch mode, a few milliseconds' worth of passing tests at a time.

    Batching saves a write (and a wake-up of the parent) per test, and passing tests travel as
    one ("oks", first index, [seconds], [payloads]) message per batch, so that the parent decodes
    one message instead of one per test. A non-passing result is flushed at once; if a hard kill
    ever lands while results are pending, the parent re-runs the tests it did not hear about
    unbatched, so a timeout is always pinned on the right test.
    """

    FLUSH_SECONDS = 0.002
    FLUSH_BYTES = 1 << 18

    def __init__(self, fd: int, batch: bool):
        self.fd, self.batch = fd, batch
        self.widened = False
        self.pending: list[bytes] = []
        self.size = 0
        self.last = _perf()
        self.ok_first = 0
        self.ok_seconds: list[float] = []
        self.ok_payloads: list = []

    def send(self, obj, urgent: bool = False) -> None:
        if self.ok_payloads:
            self._close_oks()  # frames keep their order
        frame = _frame(obj)
        self.pending.append(frame)
        self.size += len(frame)
        now = _perf()
        if urgent or not self.batch or self.size > self.FLUSH_BYTES or now - self.last > self.FLUSH_SECONDS:
            self.flush(now)

    def passed(self, index: int, seconds: float, payload) -> None:
        """Report a test that ran to completion ("ok"); its payload is judged by the parent."""
        if not self.batch:
            self.send(("test", index, "ok", "", seconds, payload))
            return
        if not self.ok_payloads:
            self.ok_first = index
        self.ok_seconds.append(seconds)
        self.ok_payloads.append(payload)
        t = type(payload)
        self.size += len(payload) if t is bytes else len(payload[0]) if t is tuple else 64  # stdio: (text, cut)
        now = _perf()
        if self.size > self.FLUSH_BYTES or now - self.last > self.FLUSH_SECONDS:
            self.flush(now)

    def _close_oks(self) -> None:
        self.pending.append(_frame(("oks", self.ok_first, self.ok_seconds, self.ok_payloads)))
        self.ok_seconds, self.ok_payloads = [], []

    def send_raw(self, data) -> None:
        """A big return value's pickle as a raw frame, written straight from its buffer."""
        if len(data) > MAX_PAYLOAD:
            self.send(("oversized", len(data)), urgent=True)
            return
        self.flush()
        _write_all(self.fd, HEADER.pack(len(data) | RAW))
        _write_all(self.fd, data)
        self.last = _perf()

    def widen(self) -> None:
        """Big values follow: a 1 MiB pipe (the unprivileged maximum by default) instead of
        64 KiB, so that the parent reads them in 16x fewer wake-ups. Best effort."""
        if not self.widened:
            self.widened = True
            try:
                fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass

    def flush(self, now: float | None = None) -> None:
        if self.ok_payloads:
            self._close_oks()
        if self.pending:
            _write_all(self.fd, b"".join(self.pending))
            self.pending, self.size = [], 0
        self.last = _perf() if now is None else now


def _describe(exc: BaseException) -> str:
    """'ClassName: first line of the message', robust to hostile __str__."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - untrusted __str__
        text = "<unprintable>"
    first = text.strip().splitlines()[0] if text.strip() else ""
    name = type(exc).__name__
    return f"{name}: {first[:300]}" if first else name


def _code_of(exc: BaseException) -> str:
    if isinstance(exc, TimeLimitExceeded):
        return "timeout"
    if isinstance(exc, MemoryError):
        return "memory"
    return "exception"


# --------------------------------------------------------------------------------------------------
# Set-up (the process itself is confined by `focalpo.sandbox.confine`)


def prepare_zygote(env: dict[str, str] | None) -> None:
    """Job set-up that is the same for every job, done once in the zygote before any fork.

    Whatever a job does itself costs it copy-on-write page faults on the zygote's memory (about
    a thousand per job, most of a trivial job's cost), so signal dispositions, the std streams on
    fds 1 and 2, numpy's seeded global generator (numpy does not reseed after a fork; `random`
    does, so the job seeds that one) and, when every job gets the same work directory, the job
    environment are inherited instead.
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, _on_alarm)
    guards.guard_unittest()
    seed_numpy()
    sys.argv = [PROGRAM_MODULE + ".py"]
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="replace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace")
    if env is not None:
        enter_environment(env)


def seed_numpy() -> None:
    """Seed numpy's global generator if the zygote has imported numpy (jobs inherit the state)."""
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        np_random.seed(0)


# --------------------------------------------------------------------------------------------------
# Running


def _compile(source: str, filename: str):
    """Compile untrusted code as a fresh interpreter would: `dont_inherit`, or it would inherit
    this module's `from __future__ import annotations` (annotations would become strings)."""
    return compile(source, filename, "exec", dont_inherit=True)


def _threads() -> set:
    """Threads started through `threading`, other than this one. The zygote does not import
    `threading` (its after-fork hook alone cost each job ~130 page faults): if the program never
    imported it, it started no thread that an interpreter exit would wait for."""
    threading = sys.modules.get("threading")
    if threading is None:
        return set()
    me = threading.current_thread()
    return {t for t in threading.enumerate() if t is not me}


def _timed(fn, seconds: float):
    """Run fn() under the in-process timer; returns (code, message, duration, value)."""
    t0 = _perf()
    _setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        value = fn()
        _setitimer(signal.ITIMER_REAL, 0)
        return "ok", "", _perf() - t0, value
    except BaseException as e:  # noqa: BLE001 - everything a program can raise, SystemExit included
        _setitimer(signal.ITIMER_REAL, 0)
        return _code_of(e), _describe(e), _perf() - t0, e


class _Runner:
    def __init__(self, spec: dict):
        self.spec = spec
        # The program is a real module, so test code may also `from solution import f`.
        name = spec.get("module", PROGRAM_MODULE)
        self.module = types.ModuleType(name)
        self.ns: dict = self.module.__dict__
        self.ns["__builtins__"] = builtins
        guards.set_program_namespace(self.ns)
        self.modules: dict[str, types.ModuleType] = {}
        self.output_limit = spec["limits"]["output"]
        self.reporter: _Reporter | None = None
        self.index = -1
        self.workdir = spec["workdir"]
        # A real file when extra files or coverage need one (coverage knows code by its file name).
        self.on_disk = "files" in spec or "coverage" in spec
        self.filename = os.path.join(self.workdir, name + ".py") if self.on_disk else name + ".py"
        self.failure: BaseException | None = None  # what made the current test fail, if anything
        self.cov = None  # a started coverage.Coverage
        self.cov_problem = ""  # why coverage is not measured, until reported
        self.cov_sent: set[int] = set()

    def load(self) -> tuple[str, str, float]:
        program, filename = self.spec["program"], self.filename
        if self.on_disk:
            problem = self._prepare_directory()
            if problem:
                return "exception", problem, 0.0
            self.ns["__file__"] = filename

        def _load():
            exec(_compile(program, filename), self.ns)

        if not self.spec["needs_namespace"]:
            # Only stdio tests: the program runs per test as __main__; just check it compiles.
            code, msg, dt, self.failure = _timed(lambda: _compile(program, filename), 10.0)
            return code, msg, dt
        sys.modules[self.module.__name__] = self.module
        if any(side[0] == "unittest" and side[3] == "program" for _, side, _ in self.spec["tests"]):
            self.ns.update(sys=sys, os=os, environ=os.environ)  # BigCodeBench's module starts with these
        code, msg, dt, self.failure = _timed(_load, self.spec["load_time"])
        return code, msg, dt

    def _prepare_directory(self) -> str:
        """Write the program and the extra files (as the job's uid, so they go with the directory),
        start coverage, then put the directory first on sys.path. Returns a load error, or ''."""
        files = self.spec.get("files") or {}
        name = ""
        try:
            for name, text in ((self.module.__name__ + ".py", self.spec["program"]), *files.items()):
                path = os.path.join(self.workdir, name)
                if "/" in name:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
        except (OSError, ValueError) as e:  # the file size limit, a surrogate in the text ...
            return f"could not write the file {name!r}: {getattr(e, 'strerror', None) or _describe(e)}"
        if self.spec.get("coverage"):
            self._start_coverage()  # before the directory is on sys.path: a file may be coverage.py
        if files:
            sys.path.insert(0, self.workdir)
        return ""

    # ----------------------------------------------------------------------------------------------
    # Coverage of the program file (only with spec["coverage"])

    def _start_coverage(self) -> None:
        try:
            import coverage
        except ImportError:
            self.cov_problem = "coverage.py is not installed"
            return
        try:
            # No config file: the directory holds files of the job's own making (a .coveragerc).
            cov = coverage.Coverage(data_file=None, include=[self.filename], branch=False, config_file=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cov.start()
        except Exception as e:  # noqa: BLE001
            self.cov_problem = f"coverage.py failed to start: {_describe(e)}"
            return
        self.cov = cov

    def report_coverage(self, stop: bool = False) -> None:
        """Send the program lines executed since the last report (the parent takes the union), or
        why there are none. Runs between tests: the program may have tampered with coverage."""
        if self.cov is None:
            if self.cov_problem:
                self.reporter.send(("cov", self.cov_problem))
                self.cov_problem = ""
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "no data collected" and the like: not the program's output
                if stop:
                    self.cov.stop()
                data = self.cov.get_data()
                lines = {n for f in data.measured_files() for n in data.lines(f) or ()}
        except Exception as e:  # noqa: BLE001
            self.cov, self.cov_problem = None, f"coverage.py failed: {_describe(e)}"
            return self.report_coverage()
        new = lines - self.cov_sent
        if new:
            self.cov_sent |= new
            self.reporter.send(("cov", sorted(new)))

    # ----------------------------------------------------------------------------------------------
    # Tracebacks (failing tests only)

    def report_traceback(self, index: int) -> None:
        """Send ("tb", index, frames, exception text) for the failure of test `index` (-1: the load).
        Frames are (kind, file, line, function) of the program ("program"), test code ("test") and
        files in the working directory ("file"), the last TRACEBACK_FRAMES of them."""
        exc = self.failure
        if exc is None:
            return
        try:
            frames, prefix = [], self.workdir + "/"
            tb = exc.__traceback__
            while type(tb) is types.TracebackType:
                code = tb.tb_frame.f_code
                name = code.co_filename
                if name == self.filename:
                    kind, name = "program", self.module.__name__ + ".py"
                elif name in TEST_FILES:
                    kind = "test"
                elif name.startswith(prefix):
                    kind, name = "file", name[len(prefix) :]
                else:  # the harness, unittest, the standard library
                    tb = tb.tb_next
                    continue
                frames.append((kind, name[:200], tb.tb_lineno or 0, str(code.co_name)[:200]))
                tb = tb.tb_next
            try:
                text = "".join(traceback.format_exception_only(type(exc), exc))
            except BaseException:  # noqa: BLE001 - untrusted __str__ / __notes__
                text = _describe(exc) + "\n"
            text = text.replace(prefix, "")[-TRACEBACK_CHARS:]
            self.reporter.send(("tb", index, frames[-TRACEBACK_FRAMES:], text))
        except BaseException:  # noqa: BLE001 - a forged __traceback__: no traceback, the verdict stands
            pass

    def run(self, test: tuple, seconds: float):
        kind = test[0]
        self.failure = None
        return getattr(self, "_" + kind)(test, seconds)

    def _call(self, test, seconds):
        _, entry_point, args = test

        def call():
            fn = self.ns[entry_point]
            return fn(*args)

        code, msg, dt, value = _timed(call, seconds)
        if code != "ok":
            self.failure = value
            return code, msg, dt, None
        if _is_big(value):
            # Converting and sending a huge value can take longer than the call itself: tell the
            # parent the call is over, so that it measures the transfer against its own allowance,
            # then send the value's pickle as the raw frame that stands for this test's report.
            self.reporter.send(("ran", self.index, dt), urgent=True)
            self.reporter.widen()
            self.reporter.send_raw(_pickle_plain(value, view=True))
            return code, msg, dt, _SENT
        # Sent as its own pickle, so that the parent can compare bytes before decoding anything.
        return code, msg, dt, _pickle_plain(value)

    def _assert(self, test, seconds):
        _, setup, body = test
        # The real builtins, even if the program deleted its own `__builtins__` (exec would then
        # hand the test code this harness's private copy).
        ns = {**self.ns, **guards.HELPERS, "__builtins__": builtins}

        def run():
            if setup:
                exec(_compile(setup, "test_setup.py"), ns)
            exec(_compile(body, "test.py"), ns)

        code, msg, dt, exc = _timed(run, seconds)
        if code == "exception" and isinstance(exc, AssertionError):
            code = "fail"
        if code != "ok":
            self.failure = exc
        else:
            changed = guards.checkers_changed()
            if changed:
                return "exception", f"the program changed {changed}", dt, None
        return code, msg, dt, None

    def _stdio(self, test, seconds):
        """Run the program as __main__ with real fds: stdin is a memfd holding the input on fd 0,
        stdout a memfd on fd 1, so `open(0)`, `os.read(0)` and `os.write(1)` work as in a judge.
        Like an interpreter exit, non-daemon threads the program started are waited for (within
        the time limit) before the output is read."""
        _, stdin = test
        program, filename = self.spec["program"], self.filename
        ns = {"__name__": "__main__", "__builtins__": builtins}
        saved = sys.stdin, sys.stdout, os.dup(0), os.dup(1)
        in_fd, out_fd = os.memfd_create("stdin"), os.memfd_create("stdout")
        _write_all(in_fd, stdin.encode())
        os.lseek(in_fd, 0, os.SEEK_SET)
        before = _threads()

        def run():
            os.dup2(in_fd, 0)
            os.dup2(out_fd, 1)
            sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
            sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", errors="replace")
            try:
                exec(_compile(program, filename), ns)
            except SystemExit as e:
                if e.code not in (None, 0):
                    raise
            finally:
                for t in _threads() - before:
                    if not t.daemon:
                        t.join()
                sys.stdout.flush()

        try:
            code, msg, dt, exc = _timed(run, seconds)
            if code != "ok":
                self.failure = exc
            text, truncated = self._read_capped(out_fd)
        finally:
            sys.stdin, sys.stdout = saved[0], saved[1]
            os.dup2(saved[2], 0)
            os.dup2(saved[3], 1)
            for fd in (saved[2], saved[3], in_fd, out_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        return code, msg, dt, (text, truncated)

    def _read_capped(self, fd: int) -> tuple[str, bool]:
        """The first `output_limit` bytes written to `fd`, and whether there were more."""
        size = os.fstat(fd).st_size
        os.lseek(fd, 0, os.SEEK_SET)
        chunks, want = [], min(size, self.output_limit)
        while want > 0:
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            want -= len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace"), size > self.output_limit

    def _unittest(self, test, seconds):
        _, module, method, namespace = test

        def run():
            mod = self._test_module(module, namespace)
            cls_name, _, meth = method.rpartition(".")
            result = _FirstProblem()
            # Through a TestSuite, so setUpModule/setUpClass (and their tear-downs) run too.
            unittest.TestSuite([getattr(mod, cls_name)(meth)]).run(result)
            return result

        # Before the test module first runs: after it, its own settings become the baseline
        # (watch_guards), so a change the program made while loading must be caught now. Later
        # tests of the job are covered by the previous test's check below.
        changed = guards.unittest_changed() if module not in self.modules else ""
        if changed:
            return "exception", changed, 0.0, None
        code, msg, dt, result = _timed(run, seconds)
        changed = guards.unittest_changed()
        if changed:
            return "exception", changed, dt, None
        if code != "ok":
            self.failure = result
            return code, msg, dt, None
        if result.problem is not None:
            kind, exc = result.problem
            self.failure = exc
            code = _code_of(exc)
            return ("fail" if kind == "fail" and code == "exception" else code), _describe(exc), dt, None
        if result.skipped:
            # A skip can come from the program (raise unittest.SkipTest): it is not a pass.
            return "exception", f"SkipTest: {str(result.skipped[0][1])[:300]}", dt, None
        if result.testsRun != 1:
            return "exception", f"test method {method} did not run", dt, None
        return "ok", "", dt, None

    def _test_module(self, source: str, namespace: str = "own") -> types.ModuleType:
        """The test module, run once per job in a namespace that starts as a copy of the program's;
        registered in sys.modules so that unittest finds its setUpModule. With `namespace="program"`
        (UnittestTest) what it binds becomes the program's too, as if both were one module."""
        mod = self.modules.get(source)
        if mod is None:
            mod = _shared_module(self.ns) if namespace == "program" else types.ModuleType(TEST_MODULE)
            mod.__dict__.update({k: v for k, v in self.ns.items() if k not in ("__name__", "__spec__")})
            mod.__dict__.update(guards.HELPERS)  # for the guarded arguments of its assertion calls
            mod.__dict__["__builtins__"] = builtins  # as in _assert
            sys.modules[TEST_MODULE] = mod
            guards.trust_test_module(mod)
            exec(_compile(source, TEST_MODULE + ".py"), mod.__dict__)
            if namespace == "program":
                self._share(mod)
            self.modules[source] = mod
            watch_guards()  # what the test module itself set (`TestCase.maxDiff = None`) is no tampering
        return mod

    def _share(self, mod: types.ModuleType) -> None:
        """Bind in the program's namespace what the test module bound (its imports, constants,
        helpers), test code coming after the program's as in one module. Not its dunders, the
        assertion helpers, nor the classes it defines: those stay the test's alone, which is what
        keeps them trusted (`guards._library_class`). Later rebinding goes through
        `_shared_module`."""
        for name, value in mod.__dict__.items():
            if name.startswith("__") or name in guards.HELPERS or self.ns.get(name, _UNSET) is value:
                continue
            if issubclass(type(value), type) and getattr(value, "__module__", None) == TEST_MODULE:
                continue
            self.ns[name] = value


def _shared_module(program_ns: dict) -> types.ModuleType:
    """A test module whose attribute assignments also rebind the program's globals, as in one
    module: `patch(__name__ + ".randint")` in a BigCodeBench test sets (and afterwards restores)
    the `randint` that the program's functions call."""

    class SharedTestModule(types.ModuleType):
        def __setattr__(self, name, value):
            super().__setattr__(name, value)
            if not name.startswith("__"):
                program_ns[name] = value

        def __delattr__(self, name):
            super().__delattr__(name)
            if not name.startswith("__"):
                program_ns.pop(name, None)

    return SharedTestModule(TEST_MODULE)


class _FirstProblem(unittest.TestResult):
    """A TestResult that keeps the first error or failure as the exception itself, so that the
    harness's own TimeLimitExceeded / MemoryError (which unittest's bare `except:` records as an
    error) keep their meaning, and the message is 'Class: first line', not a traceback's tail."""

    def __init__(self):
        super().__init__()
        self.problem: tuple[str, BaseException] | None = None

    def _note(self, kind: str, err) -> None:
        if self.problem is None:
            self.problem = (kind, err[1])

    def addError(self, test, err):
        self._note("error", err)
        super().addError(test, err)

    def addFailure(self, test, err):
        self._note("fail", err)
        super().addFailure(test, err)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._note("fail" if issubclass(err[0], test.failureException) else "error", err)
        super().addSubTest(test, subtest, err)


def watch_guards() -> None:
    """Remember unittest's machinery (this harness's result class included), the builtins and the
    checkers as they are now: in the zygote before any job, and again after a job's test module ran."""
    guards.watch_unittest(extra=(_FirstProblem,))
    guards.watch_checkers()


_SEQUENCES = (list, tuple)


class _PlainPickler(pickle.Pickler):
    """Pickles a value as `to_plain(value)` would be pickled, at C speed.

    The pickler writes exact builtin values (the common case, and the bulk of a big output)
    itself, without ever calling `reducer_override`; every other object reaches it and is
    written as `plain(to_plain(obj))`. For a plain value the bytes equal `pickle.dumps(value)`,
    so the parent's byte comparison with the expected output still applies; walking a big output
    in Python first (`to_plain`) cost more than computing it (MBPP+'s Mbpp/255: 4.3 s of 9).
    """

    def reducer_override(self, obj):
        if obj is plain or type(obj) is Opaque or obj is Opaque or obj is complex or type(obj) is complex:
            return NotImplemented  # our own stand-ins, and complex's (allowed) constructor
        return (plain, (to_plain(obj),))


def _pickle_plain(value, view: bool = False):
    """The value's pickle as bytes or, with `view`, as any buffer (a big one is not copied)."""
    t = type(value)
    if t in SCALAR_TYPES or (t in _SEQUENCES and len(value) <= 64 and SCALAR_TYPES.issuperset(map(type, value))):
        return _dumps(value, protocol=pickle.HIGHEST_PROTOCOL)  # most return values: no Pickler needed
    buf = io.BytesIO()
    try:
        _PlainPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        return buf.getbuffer() if view else buf.getvalue()
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - nesting deeper than the recursion limit, a hostile __module__ ...
        return _dumps(to_plain(value), protocol=pickle.HIGHEST_PROTOCOL)  # bounded depth


_SENT = object()  # a test's report that went out already (as a raw frame)


def _is_big(value) -> bool:
    try:
        return type(value) in (list, tuple, str, bytes, dict, set, frozenset) and len(value) > BIG_OUTPUT
    except Exception:  # noqa: BLE001
        return False


def run_job(spec: dict, result_fd: int = 3) -> None:
    """Load the program, run spec["tests"], report each; never returns. The process has been
    confined already (`focalpo.sandbox.confine.confine`)."""
    random.seed(0)  # same inputs, same verdicts: programs that use `random` unseeded are repeatable
    module = spec.get("module", PROGRAM_MODULE)
    if module != PROGRAM_MODULE:
        sys.argv = [module + ".py"]
    runner = _Runner(spec)
    report = runner.reporter = _Reporter(result_fd, spec.get("batch", False))
    measure = spec.get("coverage", False)
    code, msg, dt = runner.load()
    if measure:
        runner.report_coverage()
    if code != "ok":
        runner.report_traceback(-1)
    report.send(("load", code, msg, dt), urgent=True)
    if code != "ok":
        _flush_and_exit(0)
    fail_fast = spec["limits"]["fail_fast"]
    me = os.getpid()
    for index, test, seconds in spec["tests"]:
        runner.index = index
        code, msg, dt, payload = runner.run(test, seconds)
        if os.getpid() != me:  # a child the program forked came back into the harness: not ours to report
            _exit(0)
        if measure:
            runner.report_coverage()
        if code == "exception" or code == "fail":
            runner.report_traceback(index)
        if code == "ok":
            if payload is not _SENT:
                report.passed(index, dt, payload)
        else:
            report.send(("test", index, code, msg, dt, payload), urgent=True)
        if fail_fast and code != "ok":
            break
    if measure:
        runner.report_coverage(stop=True)
    report.send(("done",), urgent=True)
    _flush_and_exit(0)


def _flush_and_exit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have replaced or closed it
            pass
    _exit(status)


__all__ = ["run_job", "prepare_zygote", "TimeLimitExceeded", "Opaque"]
