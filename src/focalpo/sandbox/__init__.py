"""Run untrusted, model-written Python against tests and get one verdict per test.

    from focalpo.sandbox import execute, ExecPool, Job, CallTest
    r = execute("def add(a, b): return a + b", [CallTest("t0", "add", (1, 2), expected=3)])
    r.verdicts[0].status   # "pass"

    with ExecPool(workers=8) as pool:          # many jobs, all cores, progress bar
        results = pool.map(jobs, desc="eval")

How a job runs: each pool slot has a *zygote*, a clean pre-warmed Python process started with a
scrubbed environment. Every job is a fresh `fork()` of it (about 1 ms) that decodes its own spec
(so every job of a zygote starts from the same heap), imports the program and runs its tests in
order, reporting on a private pipe (passing tests a few milliseconds' worth per message; a big
return value as its bare pickle, read in place). Call and stdin/stdout tests are judged in the
parent (`focalpo.sandbox.judge`): the job only returns values, decoded by an unpickler that builds
nothing but plain builtin values, and never sees the expected outputs. Each test has its own time
limit: an in-process timer first, then a hard kill by the parent, after which a fresh job continues
with the next test. `Job(budgets=[TimeBudget(62.0)])` also bounds the whole list's wall time
(evalplus's per-sample limit), shared by the jobs that run chunks of it.

`Job(module="fib", files={"data.json": ...}, coverage=True)`: the program is importable as `fib`
(tests `from fib import fib`), extra files are written into the job's directory (first on
sys.path), and `ExecResult.coverage` gives the program's line coverage by the tests (coverage.py,
merged over the job's processes). Failing tests carry `Verdict.traceback`, the last frames of the
program, test code and extra files (a load error: `ExecResult.load_traceback`).

Modules: `types` (tests, limits, jobs, results), `pool` (scheduling jobs on slots), `slot` (one
zygote and the deadlines of its jobs), `attempt` (the parent's side of the frame protocol),
`judge` (verdicts decided in the parent; benchmarks' named oracles are registered there by
`focalpo.problems.oracles`), `zygote`, `isolation` (the zygote's namespaces and mounts),
`confine` (each job's rlimits, uid, environment), `_job` (the harness inside the job), `wire`
(frames, safe unpickling), `asserts`/`guards` (assertions that program objects cannot fake).

What is isolated (as root on Linux; `ExecPool.isolation` / `ExecResult.isolation` report what
was actually in force, with notes on what was not):
- processes: each job is PID 1 of its own PID namespace, so when it ends or is killed every
  process it started dies with it, `setsid` daemons included; it cannot signal anything outside,
  and /proc (mounted with `hidepid=2`) shows it only its own processes. Without namespaces, a
  child subreaper kills leftovers instead.
- network: the zygote lives in a new network namespace whose only interface is its own loopback;
  jobs can serve and connect on localhost among themselves (BigCodeBench has such tasks) but
  reach nothing else, the host's loopback included (`Limits(network=True)` keeps the host network).
- files: jobs run as an unprivileged uid of their own (one per live zygote, so pools never share
  one) in a fresh working directory (also HOME and TMPDIR) that is removed afterwards; with a
  private /tmp it has the same path for every job, so a program that prints it is repeatable. /tmp, /var/tmp and /dev/shm are private to the slot
  (writable, emptied after every job), so nothing a job writes reaches the host or the next job.
  Directories an unprivileged user could not enter (e.g. /root, where pyenv lives) are covered by
  an empty mount. Every import location of the interpreter running the pool (its prefixes,
  sys.path, site directories, `.pth` paths, PYTHONPATH, editable installs) that a cover hides,
  a virtualenv under /tmp included, is bound back read-only at its own path: jobs import from it,
  cannot write there, and see nothing else of the host's /tmp.
- imports: the environment is the user's, a job imports what the pool's process imports. A job
  that cannot import a module the pool's process can is an infrastructure fault
  (`EnvironmentFault` stops the run); a module missing from the environment altogether fails the
  sample and is named in `ExecResult.missing_modules` (see `focalpo.sandbox.environment`).
- environment: the zygote starts with a minimal environment and jobs get a fixed one: nothing of
  the caller's environment (API keys, tokens) is visible; PYTHONHASHSEED and `random` are fixed.
- resources: address space (4 GiB), file size, open files, processes per job uid (64), files in
  each private scratch dir (tmpfs, so memory: 1 GiB and 65,536 files, `Limits.scratch`; then
  ENOSPC), no core dumps, captured stdout/stderr capped (excess dropped and flagged).

What is NOT isolated:
- this is not a security boundary against a determined attacker: there is no seccomp filter, the
  kernel is shared, files readable by any user (the Python installation, /etc) stay readable, and
  CPU time is not capped beyond the per-test wall limit;
- memory is limited per process, not per job: a job may start up to 64 processes. Every job
  process has the highest OOM score (`oom_score_adj` 1000), so if a job exhausts the host's
  memory the kernel kills the job's processes first, not the evaluator or other work;
- assertion and unittest tests are decided inside the job, next to the program. Asserts, and the
  arguments of unittest's assertion calls, are rewritten so that objects of classes the program
  created cannot fake `==`, ordering, `in` or truth, also inside containers and in comparisons
  nested in the condition, nor decide arithmetic or common converting builtins on them
  (`abs(f() - x) < 1e-6` with a `__sub__` returning 0.0, `math.isclose` with a lying `__float__`;
  see `focalpo.sandbox.asserts`); unittest's `assertEqual`, `assertIn`, `assertAlmostEqual` & co.
  refuse such objects the same way, and a verdict is refused when the program changed unittest
  (patched `TestCase.assertEqual`, a replaced `unittest` module) or replaced a builtin
  (`builtins.sorted`, which test code calls) or a library function tests check values with
  (`math.isclose`, `np.allclose`, `np.testing.*`, `pd.testing.*`: `guards.CHECKERS`). Classes of
  libraries imported during the job are told from the program's by their module's file;
  `unittest.mock.ANY` counts as the program's. Not covered: other builtins and methods called on
  program objects (`f().equals(x)`), other library functions that test code calls and the program
  replaced, and code outside assertions. Printed text, exit codes, `sys.exit`/`os._exit` and killing
  the parent can never yield a pass, and replacing a builtin cannot break the harness, which runs
  on its own copy of them (`focalpo.sandbox._builtins`). But a program that deliberately writes
  forged frames to its result pipe, or patches the harness module itself, can fake those verdicts
  (call and stdio tests are immune: their verdicts are computed in the parent);
- line coverage and tracebacks are also measured inside the job: a program can distort them
  (stop the tracer, forge "cov"/"tb" frames); the parent only checks their types and sizes;
- time: a program that forges the "big value follows" notice (once per test) must then send
  bytes within its test's allowance at every step; by trickling bytes it can stretch a test to
  at most `Limits.transfer_time` (60 s), and it still has to produce a valid frame;
- not as root (or where namespaces are refused): no PID/network/mount namespaces and no uid
  switch; jobs still get rlimits, a fresh directory, a scrubbed environment and leftover killing,
  and the report says that the network is NOT disabled.
"""

from focalpo.sandbox.types import (
    NO_EXPECTED,
    AssertTest,
    CallTest,
    ExecResult,
    Job,
    Limits,
    SandboxError,
    Status,
    StdioTest,
    TestCase,
    TimeBudget,
    UnittestTest,
    Verdict,
    test_from_dict,
    test_to_dict,
)

__all__ = [
    "DEFAULT_PRELOAD", "EnvironmentFault", "ExecPool", "Job", "SandboxError", "execute", "NO_EXPECTED", "AssertTest",
    "CallTest", "ExecResult", "Limits", "Status", "StdioTest", "TestCase", "TimeBudget", "UnittestTest",
    "Verdict", "test_from_dict", "test_to_dict",
]  # fmt: skip

_POOL_NAMES = frozenset({"DEFAULT_PRELOAD", "ExecPool", "execute"})


def __getattr__(name: str):
    # The pool (threading, subprocess, ...) is imported on first use, not with the package: the
    # zygote imports modules of this package, and `threading` imported there would make every
    # job run its after-fork hook (~130 page faults a job).
    if name in _POOL_NAMES:
        from focalpo.sandbox import pool

        return getattr(pool, name)
    if name == "EnvironmentFault":
        from focalpo.sandbox.environment import EnvironmentFault

        return EnvironmentFault
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
