"""Plain data types of the execution sandbox: test cases, limits, jobs, verdicts, results.

Four test formats cover every benchmark and pipeline in focalpo; the problem layer
(`focalpo.problems`) turns each benchmark into them, so the executor has no benchmark special case:

- `CallTest`      call `entry_point(*args)`; the output is judged in the trusted parent against
                  `expected` (exact, or `atol`, or a named oracle registered with `focalpo.sandbox.judge`).
- `AssertTest`    run a snippet of `assert` statements after the program, in its namespace.
- `StdioTest`     run the program as a script with `stdin`; its stdout is judged in the parent.
- `UnittestTest`  one `unittest` test method of a test module (BigCodeBench style).

All of these are frozen dataclasses of plain data, so they pickle to the worker processes and
serialise to JSON (`test_to_dict` / `test_from_dict`).
"""

from __future__ import annotations

import _thread
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence, Union

from focalpo.sandbox.jobfiles import PROGRAM_MODULE, check_job_layout
from focalpo.sandbox.wire import Pickled


class _NoExpected:
    """Sentinel: a call test without a known expected output (e.g. when computing ground truth)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_EXPECTED"

    def __reduce__(self):
        return (_NoExpected, ())


NO_EXPECTED: Any = _NoExpected()


@dataclass(frozen=True, init=False)
class CallTest:
    """Call `entry_point(*args)` and compare the returned value with `expected` in the parent."""

    kind: ClassVar[str] = "call"
    name: str
    entry_point: str
    args: tuple
    expected: Any = NO_EXPECTED
    atol: float = 0.0
    oracle: str | None = None  # name registered with focalpo.sandbox.judge.register_oracle
    time_limit: float | None = None  # seconds; None = Limits.test_time

    def __init__(
        self, name: str, entry_point: str, args: tuple, expected: Any = NO_EXPECTED, atol: float = 0.0,
        oracle: str | None = None, time_limit: float | None = None,
    ) -> None:  # fmt: skip
        # The fields above, stored straight into the instance dict: loaders build 10^5 of these
        # (HumanEval+: 125k), and the frozen dataclass's generated __init__, one
        # `object.__setattr__` per field, took twice as long. Still immutable after construction.
        d = self.__dict__
        d["name"], d["entry_point"], d["args"], d["expected"] = name, entry_point, args, expected
        d["atol"], d["oracle"], d["time_limit"] = atol, oracle, time_limit

    def with_expected(self, expected: Any, time_limit: float | None) -> "CallTest":
        """A copy with `expected` and `time_limit` set (ground truth does this for 10^5 tests)."""
        new = object.__new__(CallTest)
        new.__dict__.update(self.__dict__, expected=expected, time_limit=time_limit)
        return new


@dataclass(frozen=True)
class AssertTest:
    """Run `setup` then `code` (assert statements) in the program's namespace."""

    kind: ClassVar[str] = "assert"
    name: str
    code: str
    setup: str = ""
    time_limit: float | None = None


@dataclass(frozen=True)
class StdioTest:
    """Run the program as `__main__` with `stdin`; stdout must equal `expected_stdout`.

    Comparison ignores trailing whitespace on each line and trailing blank lines
    (LiveCodeBench / competitive-programming convention).
    """

    kind: ClassVar[str] = "stdio"
    name: str
    stdin: str
    expected_stdout: str
    time_limit: float | None = None


@dataclass(frozen=True)
class UnittestTest:
    """One test method (`method` = "TestCases.test_x") of the unittest module `module`.

    `namespace="own"`: the test module starts as a copy of the program's namespace and keeps its
    own names. `namespace="program"`: program and test code share one namespace, as BigCodeBench's
    harness runs `exec(code + "\\n" + test_code)` in one module that starts with `sys`, `os` and
    `environ`: the program may use what only the test module imports or defines.
    """

    kind: ClassVar[str] = "unittest"
    name: str
    module: str
    method: str
    time_limit: float | None = None
    namespace: str = "own"

    def __post_init__(self) -> None:
        if self.namespace not in ("own", "program"):
            raise ValueError(f"UnittestTest.namespace must be 'own' or 'program', got {self.namespace!r}")


TestCase = Union[CallTest, AssertTest, StdioTest, UnittestTest]
TEST_KINDS: dict[str, type] = {c.kind: c for c in (CallTest, AssertTest, StdioTest, UnittestTest)}


def test_to_dict(test: TestCase) -> dict:
    """JSON-friendly dict of a test (`args`/`expected` must themselves be JSON-able to dump)."""
    d = dataclasses.asdict(test)
    d["kind"] = test.kind
    if isinstance(test, CallTest):
        d["args"] = list(test.args)
        if test.expected is NO_EXPECTED:
            del d["expected"]
        elif isinstance(test.expected, Pickled):
            d["expected"] = test.expected.value
    return d


def test_from_dict(d: dict) -> TestCase:
    """Inverse of `test_to_dict`; raises ValueError naming the bad field."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in TEST_KINDS:
        raise ValueError(f"field 'kind': unknown test kind {kind!r}; expected one of {sorted(TEST_KINDS)}")
    cls = TEST_KINDS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown field(s) for a {kind} test: {sorted(unknown)}")
    if cls is CallTest and "args" in d:
        d["args"] = tuple(d["args"])
    try:
        return cls(**d)
    except TypeError as e:
        raise ValueError(f"bad {kind} test: {e}") from None


# --------------------------------------------------------------------------------------------------
# Limits


GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job. Times in seconds, sizes in bytes."""

    test_time: float = 4.0  # per-test wall time when the test has no time_limit of its own
    load_time: float = 10.0  # wall time to import the program (module-level code)
    grace: float = 0.5  # extra wall time before a hard kill, after the in-process timer fired
    transfer_time: float = 60.0  # wall time to convert and send back one huge return value
    memory: int = 4 * GiB  # RLIMIT_AS
    output: int = 1 * MiB  # stdout/stderr kept per stream (excess is dropped and flagged)
    file_size: int = 64 * MiB  # RLIMIT_FSIZE
    open_files: int = 256  # RLIMIT_NOFILE
    scratch: int = 1 * GiB  # bytes (and one file per 16 KiB) each private scratch dir holds: /tmp, /var/tmp, /dev/shm
    processes: int = 64  # RLIMIT_NPROC for the job's uid (when the sandbox can switch uid)
    network: bool = False  # allow network (only meaningful where the OS can take it away)
    fail_fast: bool = False  # stop at the first test that does not pass (like evalplus --fast_check)

    def __post_init__(self):
        if not isinstance(self.scratch, int) or self.scratch < MiB:
            # tmpfs reads size=0 as "unbounded", and the job's working directory lives there
            raise ValueError(f"Limits.scratch must be an int of at least 1 MiB (bytes), got {self.scratch!r}")

    def time_for(self, test: TestCase) -> float:
        return test.time_limit if test.time_limit is not None else self.test_time


# --------------------------------------------------------------------------------------------------
# Jobs


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
        # `_thread`'s lock is `threading.Lock`; the zygote imports this module, and `threading`
        # imported there would make every job run its after-fork hook (~130 page faults a job).
        self._lock = _thread.allocate_lock()

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


# --------------------------------------------------------------------------------------------------
# Results


class Status:
    """Verdict of one test. Plain strings so results serialise as they are."""

    PASS = "pass"
    WRONG_ANSWER = "wrong_answer"
    EXCEPTION = "exception"  # the program (or the test's own code) raised
    TIMEOUT = "timeout"
    MEMORY = "memory"  # MemoryError or the address-space limit
    CRASHED = "crashed"  # killed by a signal, or the process vanished mid-test
    NOT_RUN = "not_run"  # fail_fast stopped before this test, or the program failed to load

    ALL = (PASS, WRONG_ANSWER, EXCEPTION, TIMEOUT, MEMORY, CRASHED, NOT_RUN)


@dataclass(slots=True)
class Verdict:
    """The verdict of one test of a job (slotted: a run makes one per test, 10^5 of them)."""

    name: str
    status: str
    message: str = ""  # "KeyError: 'x'", "expected 3, got 4", "killed by SIGSEGV", ...
    duration: float = 0.0  # seconds, as measured inside the job (0 when not run)
    # exception / wrong_answer raised in the job: the last frames of the program, the test code and
    # the job's extra files (harness frames dropped), then the exception; at most 2000 characters
    traceback: str = ""

    @property
    def passed(self) -> bool:
        return self.status == Status.PASS


@dataclass
class ExecResult:
    """Everything known about one program run against a list of tests."""

    verdicts: list[Verdict]
    load_error: str = ""  # the program could not be imported: "SyntaxError: ..." etc.
    stdout: str = ""  # tail, at most Limits.output bytes
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0  # wall seconds in the parent, all processes of the job included
    outputs: list[Any] | None = None  # decoded return values / stdout (when asked for)
    isolation: dict[str, Any] = field(default_factory=dict)
    load_traceback: str = ""  # the traceback tail of load_error, as Verdict.traceback
    # Job(coverage=True): {"statements": n, "executed": [lines], "missing": [lines], "percent": p}
    # for the program file, or {"error": why}; None when coverage was not asked for
    coverage: dict[str, Any] | None = None
    # top-level modules the program or its tests failed to import that this environment lacks
    # altogether (`focalpo.sandbox.environment`): the score measures the environment there
    missing_modules: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every test passed; an empty test list passes (MBPP+ Mbpp/793 has no plus
        tests, and evalplus reports its plus status as pass)."""
        return not self.load_error and all(v.status == Status.PASS for v in self.verdicts)

    @property
    def status(self) -> str:
        """"pass", or the status of the first test that failed (one that ran, when there is one)."""
        failed = [v for v in self.verdicts if not v.passed]
        ran = [v for v in failed if v.status != Status.NOT_RUN]
        if ran or failed:
            return (ran or failed)[0].status
        return Status.NOT_RUN if self.load_error else Status.PASS

    def first_failure(self) -> Verdict | None:
        return next((v for v in self.verdicts if not v.passed), None)
