"""Tests of focalpo.sandbox: every test format and every verdict, as an honest program sees them.

Call / assert / stdio / unittest tests; timeouts (soft: the in-process timer; hard: the parent's
kill), memory, crashes, load errors, fail_fast, segments, returned outputs, captured output,
determinism and the zygote. Hostile programs are in test_hostile.py; how the parent judges in
test_judge.py, scheduling in test_pool.py, the data types in test_sandbox_types.py.

Run: .venv/bin/python -m pytest tests/sandbox/test_formats.py -q
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

import pytest
from sandbox_helpers import FAST, HANG, run_one, statuses

from focalpo.sandbox import (
    DEFAULT_PRELOAD,
    AssertTest,
    CallTest,
    ExecPool,
    Job,
    SandboxError,
    StdioTest,
    UnittestTest,
    execute,
)
from focalpo.sandbox.wire import Opaque

# --------------------------------------------------------------------------------------------------
# Call tests


def test_programs_do_not_inherit_the_harness_future_flags(pool):
    """The harness module has `from __future__ import annotations`; a program (and its tests) must
    compile as in a fresh interpreter, with evaluated annotations."""
    program = "def f(x: int) -> int:\n    return x\ndef g():\n    return f.__annotations__['x'] is int"
    res = run_one(pool, program, [CallTest("call", "g", (), expected=True), AssertTest("assert", "def h(y: str): pass\nassert h.__annotations__['y'] is str")])
    assert statuses(res) == ["pass", "pass"], res.verdicts


def test_stdlib_modules_beyond_the_preload_import_in_jobs(pool):
    """A program may import any standard-library module, not only the preloaded ones."""
    program = "import glob, csv, textwrap\nfrom unittest import mock\ndef f():\n    return textwrap.dedent('  x')"
    res = run_one(pool, program, [CallTest("import", "f", (), expected="x")])
    assert statuses(res) == ["pass"], res.load_error


# --------------------------------------------------------------------------------------------------
# Assertion tests


def test_assert_pass_fail_and_exception_messages(pool):
    program = (
        "def f(x):\n    if isinstance(x, str):\n        return {'a': 1}[x]\n"
        "    if x < 0:\n        raise ValueError('negative input')\n    return x * 2"
    )
    res = run_one(
        pool,
        program,
        [
            AssertTest("pass", "assert f(2) == 4\nassert f(0) == 0"),
            AssertTest("setup", "assert f(y) == 6", setup="y = 3"),
            AssertTest("import_solution", "from solution import f as g\nassert g(1) == 2"),
            AssertTest("fail", "assert f(2) == 5"),
            AssertTest("value_error", "assert f(-1) == 0"),
            AssertTest("key_error", "assert f('x') == 1"),
            AssertTest("test_code_error", "assert undefined_name == 1"),
        ],
    )
    assert statuses(res) == ["pass", "pass", "pass", "wrong_answer", "exception", "exception", "exception"]
    assert res.verdicts[4].message == "ValueError: negative input"
    assert res.verdicts[5].message == "KeyError: 'x'"
    assert res.verdicts[6].message.startswith("NameError: name 'undefined_name'")


# --------------------------------------------------------------------------------------------------
# Stdin/stdout tests


@pytest.mark.parametrize(
    "program",
    [
        "print(int(input()) + int(input()))",
        "import sys\nprint(sum(map(int, sys.stdin.read().split())))",
        "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))",
        "import sys\na, b = sys.stdin.readline(), sys.stdin.readline()\nsys.stdout.write(f'{int(a) + int(b)}\\n')",
        "import sys\nsys.stdout.buffer.write(str(sum(int(line) for line in sys.stdin)).encode() + b'\\n')",
        "def main():\n    print(int(input()) + int(input()))\nif __name__ == '__main__':\n    main()",
    ],
    ids=["input", "stdin.read", "stdin.buffer", "readline+write", "iterate+buffer.write", "main_guard"],
)
def test_stdio_reading_styles(pool, program):
    res = run_one(pool, program, [StdioTest("a", "1\n2\n", "3\n"), StdioTest("b", "40\n2\n", "42\n")])
    assert statuses(res) == ["pass", "pass"]


@pytest.mark.parametrize(
    "program",
    [
        "print(sum(map(int, open(0).read().split())))",
        "import os\nprint(sum(map(int, os.read(0, 1 << 16).split())))",
        "import os\nos.write(1, str(int(input()) + int(input())).encode() + b'\\n')",
    ],
    ids=["open(0)", "os.read(0)", "os.write(1)"],
)
def test_stdio_fd_level_io(pool, program):
    res = run_one(pool, program, [StdioTest("s", "1\n2\n", "3\n")])
    assert statuses(res) == ["pass"]


def test_stdio_output_flood_is_never_a_pass(pool):
    """Past the output limit a stdio test is a wrong answer (flagged); a flood that never stops
    ends as a timeout or, at the file-size limit, a crash: never a pass, and the job's log pipe
    never sees it."""
    program = "import sys\nn = int(input())\nif n:\n    while True:\n        print('x' * 1000)\nprint('y' * 2_000_000)"
    tests = [StdioTest("big", "0\n", "y" * 2_000_000 + "\n"), StdioTest("flood", "1\n", "1\n", time_limit=HANG)]
    res = run_one(pool, program, tests)
    assert res.verdicts[0].status == "wrong_answer" and "output limit" in res.verdicts[0].message
    assert res.verdicts[1].status in ("timeout", "crashed", "exception")
    assert res.stdout == ""


def test_stdio_output_of_non_daemon_thread(pool):
    program = (
        "import threading, time\n"
        "def main():\n    time.sleep(0.2)\n    print(int(input()) + int(input()))\n"
        "threading.Thread(target=main).start()"
    )
    res = run_one(pool, program, [StdioTest("s", "1\n2\n", "3\n")])
    assert statuses(res) == ["pass"]


@pytest.mark.parametrize(
    "exit_line, status",
    [
        ("import sys; sys.exit(0)", "pass"),
        ("import sys; sys.exit()", "pass"),
        ("exit()", "pass"),
        ("raise SystemExit", "pass"),
        ("import sys; sys.exit(3)", "exception"),
        ("import sys; sys.exit('bye')", "exception"),
    ],
)
def test_stdio_exit_codes(pool, exit_line, status):
    """A zero exit after correct output passes, a nonzero one fails (the process exit status counts)."""
    res = run_one(pool, f"print(int(input()) * 2)\n{exit_line}\nprint('unreachable')", [StdioTest("s", "21\n", "42\n")])
    assert statuses(res) == [status]


def test_stdio_reading_past_eof_is_an_exception(pool):
    res = run_one(pool, "print(input(), input())", [StdioTest("s", "only one line\n", "x")])
    assert statuses(res) == ["exception"] and res.verdicts[0].message.startswith("EOFError")


# --------------------------------------------------------------------------------------------------
# Unittest tests

UNITTEST_MODULE = '''
import unittest

class TestCases(unittest.TestCase):
    def setUp(self):
        with open("data.txt", "w") as fh:      # a file in the job's working directory
            fh.write("hello")

    def test_read(self):
        self.assertEqual(task_func("data.txt"), "hello")

    def test_wrong(self):
        self.assertEqual(task_func("data.txt"), "bye")

    def test_error(self):
        task_func("missing.txt")

    def test_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 2)

    def test_again(self):
        self.assertTrue(task_func("data.txt").startswith("he"))

if __name__ == "__main__":
    unittest.main()
'''

UNITTEST_PROGRAM = "def task_func(path):\n    with open(path) as fh:\n        return fh.read()"


def test_unittest_one_verdict_per_method(pool):
    """One module shared by several methods: each method gets its own verdict."""
    names = ["test_read", "test_wrong", "test_error", "test_subtests", "test_again", "test_missing"]
    tests = [UnittestTest(n, UNITTEST_MODULE, f"TestCases.{n}") for n in names]
    res = run_one(pool, UNITTEST_PROGRAM, tests)
    assert statuses(res) == ["pass", "wrong_answer", "exception", "wrong_answer", "pass", "exception"]
    assert res.verdicts[2].message.startswith("FileNotFoundError")
    assert "2 not less than 2" in res.verdicts[3].message


def test_unittest_failure_message_names_the_assertion(pool):
    res = run_one(pool, UNITTEST_PROGRAM, [UnittestTest("w", UNITTEST_MODULE, "TestCases.test_wrong")])
    assert res.verdicts[0].message.startswith("AssertionError"), res.verdicts[0].message


SHARED_MODULE = '''
import unittest
import shutil
from unittest.mock import patch
from string import punctuation
LIMIT = 3

class Point:  # the test's own class, compared by its own __eq__
    def __init__(self, x):
        self.x = x
    def __eq__(self, other):
        return isinstance(other, Point) and other.x == self.x

class TestCases(unittest.TestCase):
    def test_uses_test_imports(self):
        self.assertEqual(task_func("a!b"), ["a", "b"])
    def test_test_class_still_judges(self):
        self.assertEqual(Point(1), Point(1))
        self.assertNotEqual(Point(1), Point(2))
    @patch(__name__ + ".randint", return_value=7)
    def test_patches_the_programs_global(self, mocked):
        self.assertEqual(roll(), 7)
        mocked.assert_called_once()
    def test_the_patch_is_undone(self):
        self.assertIn(roll(), (0, 1))
'''

# uses `os` (predefined, as in BigCodeBench's module), `punctuation` and LIMIT (the tests' names)
SHARED_PROGRAM = (
    "def task_func(text):\n"
    "    assert os.sep == '/' and sys.maxsize and environ is os.environ\n"
    "    parts = [text]\n"
    "    for p in punctuation:\n"
    "        parts = [q for part in parts for q in part.split(p)]\n"
    "    return parts[:LIMIT]\n"
    "from random import randint\n"
    "def roll():\n"
    "    return randint(0, 1)\n"
)


def test_unittest_in_the_programs_namespace_as_bigcodebench_runs_it(pool):
    """namespace="program": the program sees what the test module imports and binds, and sys,
    os and environ, and `patch(__name__ + ".name")` patches the program's global, as in
    BigCodeBench's one-module harness; the test's own classes still judge."""
    names = ["test_uses_test_imports", "test_test_class_still_judges", "test_patches_the_programs_global", "test_the_patch_is_undone"]
    shared = [UnittestTest(n, SHARED_MODULE, f"TestCases.{n}", namespace="program") for n in names]
    assert statuses(run_one(pool, SHARED_PROGRAM, shared)) == ["pass"] * 4
    own = [UnittestTest(n, SHARED_MODULE, f"TestCases.{n}") for n in names]
    res = run_one(pool, SHARED_PROGRAM, own)
    assert statuses(res) == ["exception", "pass", "wrong_answer", "pass"] and res.verdicts[0].message.startswith("NameError")
    with pytest.raises(ValueError, match="namespace"):
        UnittestTest("t", SHARED_MODULE, "TestCases.x", namespace="global")


def test_unittest_set_up_class_runs(pool):
    module = (
        "import unittest\nclass T(unittest.TestCase):\n"
        "    @classmethod\n    def setUpClass(cls):\n        cls.expected = 3\n"
        "    def test_it(self):\n        self.assertEqual(f(), self.expected)\n"
    )
    res = run_one(pool, "def f():\n    return 3", [UnittestTest("t", module, "T.test_it")])
    assert statuses(res) == ["pass"], res.verdicts[0].message


def test_unittest_timeout_and_memory_statuses(pool):
    module = (
        "import unittest\nclass T(unittest.TestCase):\n"
        "    def test_loop(self):\n        while True:\n            pass\n"
        "    def test_memory(self):\n        self.data = bytearray(2 << 30)\n"
    )
    tests = [UnittestTest("loop", module, "T.test_loop", time_limit=HANG), UnittestTest("mem", module, "T.test_memory")]
    res = run_one(pool, "", tests)
    assert statuses(res) == ["timeout", "memory"], [v.message for v in res.verdicts]


# --------------------------------------------------------------------------------------------------
# Timeouts, memory, crashes


TIMEOUT_PROGRAM = '''
import signal, time

def ok():
    return 1

def busy():                      # soft: the in-process timer interrupts it
    while True:
        pass

def ignore_alarm():              # hard: only the parent's kill ends it
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass

def swallow():                   # hard: the timer's exception is caught and the loop goes on
    while True:
        try:
            n = 0
            while True:
                n += 1
        except BaseException:
            pass

def wrong():
    return 2

def sleepy(t):
    time.sleep(t)
    return t
'''


def test_soft_and_hard_timeouts_leave_later_tests_their_own_verdicts(pool):
    tests = [
        CallTest("ok0", "ok", (), expected=1),
        CallTest("busy", "busy", (), expected=1, time_limit=HANG),
        CallTest("ok1", "ok", (), expected=1),
        CallTest("ignore_alarm", "ignore_alarm", (), expected=1, time_limit=HANG),
        CallTest("ok2", "ok", (), expected=1),
        CallTest("swallow", "swallow", (), expected=1, time_limit=HANG),
        CallTest("wrong", "wrong", (), expected=1),
        CallTest("ok3", "ok", (), expected=1),
    ]
    t0 = time.monotonic()
    res = run_one(pool, TIMEOUT_PROGRAM, tests)
    elapsed = time.monotonic() - t0
    assert statuses(res) == ["pass", "timeout", "pass", "timeout", "pass", "timeout", "wrong_answer", "pass"]
    for v in (res.verdicts[1], res.verdicts[3], res.verdicts[5]):
        assert v.message.startswith("exceeded 0.5s"), v.message
    # one soft timeout (0.5 s) + two hard ones (<= 2 x (0.5 + grace) each, with a re-run) + slack
    # for the re-started jobs on a busy machine: 0.5 + 3.2 + 4 = 7.7 s, against minutes if hung
    assert elapsed < HANG + 2 * 2 * (HANG + FAST.grace) + 4.0


def test_per_test_time_limit_overrides_the_default(pool):
    tests = [
        CallTest("short", "sleepy", (0.7,), expected=0.7, time_limit=0.5),
        CallTest("long", "sleepy", (0.7,), expected=0.7, time_limit=1.5),
        CallTest("default", "sleepy", (0.2,), expected=0.2),
    ]
    res = run_one(pool, TIMEOUT_PROGRAM, tests)
    assert statuses(res) == ["timeout", "pass", "pass"]
    assert res.verdicts[0].message.startswith("exceeded 0.5s")


def test_timeouts_in_assert_and_stdio_tests(pool):
    res = run_one(pool, TIMEOUT_PROGRAM, [AssertTest("a", "assert busy() == 1", time_limit=HANG), AssertTest("b", "assert ok() == 1")])
    assert statuses(res) == ["timeout", "pass"]
    res = run_one(pool, "while True:\n    pass", [StdioTest("s", "", "", time_limit=HANG)])
    assert statuses(res) == ["timeout"]


def test_memory_exceeded(pool):
    """FAST.memory is 1 GiB of address space; 2 GiB at once, or 100 MB at a time, exceed it.
    (`bytes(n)` is calloc'ed: it takes address space without touching pages, so it is quick.)"""
    program = (
        "def big():\n    return len(bytearray(2 << 30))\n"
        "def grow():\n    chunks = []\n    while True:\n        chunks.append(bytes(100_000_000))\n"
        "def ok():\n    return 1"
    )
    tests = [
        CallTest("big", "big", (), expected=0),
        CallTest("grow", "grow", (), expected=0, time_limit=3.0),
        CallTest("after", "ok", (), expected=1),
        AssertTest("assert_big", "assert big() == 0"),
    ]
    res = run_one(pool, program, tests)
    assert statuses(res) == ["memory", "memory", "pass", "memory"]


CRASH_PROGRAM = "import ctypes, os\ndef crash():\n    return ctypes.string_at(0)\ndef leave():\n    os._exit(0)\ndef ok():\n    return 1"


def test_segfault_is_a_crash_and_later_tests_still_run(pool):
    res = run_one(pool, CRASH_PROGRAM, [CallTest("segv", "crash", (), expected=b""), CallTest("after", "ok", (), expected=1)])
    assert statuses(res) == ["crashed", "pass"]
    assert res.verdicts[0].message == "killed by SIGSEGV"


@pytest.mark.parametrize("culprit, message", [("crash", "killed by SIGSEGV"), ("leave", "process exited before reporting")])
def test_crash_after_passing_tests_is_blamed_on_the_crashing_test(pool, culprit, message):
    tests = [CallTest("ok0", "ok", (), expected=1), CallTest("ok1", "ok", (), expected=1)]
    tests += [CallTest("culprit", culprit, (), expected=1), CallTest("ok3", "ok", (), expected=1)]
    res = run_one(pool, CRASH_PROGRAM, tests)
    assert statuses(res) == ["pass", "pass", "crashed", "pass"]
    assert res.verdicts[2].message.startswith(message)


# --------------------------------------------------------------------------------------------------
# Load errors


@pytest.mark.parametrize(
    "program, status, load_error",
    [
        ("def f(:\n    pass", "exception", "SyntaxError"),
        ("x = 1 / 0\ndef f():\n    return 1", "exception", "ZeroDivisionError: division by zero"),
        ("import os\nos._exit(3)", "crashed", "program exited with code 3"),
        ("while True:\n    pass", "timeout", ""),
        ("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass", "timeout", "program load exceeded 1s"),
    ],
    ids=["syntax", "raises", "os_exit", "loop", "loop_ignoring_alarm"],
)
def test_load_errors_fail_every_test(pool, program, status, load_error):
    tests = [CallTest("a", "f", (), expected=1), AssertTest("b", "assert f() == 1")]
    res = run_one(pool, program, tests)
    assert statuses(res) == [status, status]
    assert res.load_error.startswith(load_error), res.load_error
    assert all("load" in v.message for v in res.verdicts)


def test_syntax_error_in_stdio_only_job(pool):
    res = run_one(pool, "print(", [StdioTest("s", "", "")])
    assert statuses(res) == ["exception"] and res.load_error.startswith("SyntaxError")


# --------------------------------------------------------------------------------------------------
# fail_fast, outputs, captured streams


@pytest.mark.parametrize(
    "second, status",
    [
        ("wrong", "wrong_answer"),
        ("ignore_alarm", "timeout"),
        pytest.param("crash", "crashed"),
    ],
)
def test_fail_fast_stops_at_the_first_failure(pool, second, status):
    program = TIMEOUT_PROGRAM + "\nimport ctypes\ndef crash():\n    return ctypes.string_at(0)\n"
    tests = [
        CallTest("first", "ok", (), expected=1),
        CallTest("second", second, (), expected=1, time_limit=HANG),
        CallTest("third", "ok", (), expected=1),
        CallTest("fourth", "ok", (), expected=1),
    ]
    res = run_one(pool, program, tests, limits=replace(FAST, fail_fast=True))
    assert statuses(res) == ["pass", status, "not_run", "not_run"]


def test_fail_fast_runs_everything_when_all_pass(pool):
    limits = replace(FAST, fail_fast=True)
    res = run_one(pool, TIMEOUT_PROGRAM, [CallTest(f"t{i}", "ok", (), expected=1) for i in range(3)], limits=limits)
    assert statuses(res) == ["pass"] * 3


def test_return_outputs_are_plain_values_or_opaque(pool):
    program = '''
class Point:
    pass

class MyInt(int):
    pass

def value(kind):
    return {
        "int": 3, "float": 0.5, "str": "s", "bytes": b"b", "none": None, "complex": 1j,
        "nested": {"k": [1, (2, 3), {4}, frozenset({5})]},
    }[kind]

def point():
    return Point()

def myint():
    return MyInt(3)

def gen():
    return (i for i in range(3))

def boom():
    raise ValueError("x")
'''
    kinds = ["int", "float", "str", "bytes", "none", "complex", "nested"]
    tests = [CallTest(k, "value", (k,)) for k in kinds]
    tests += [CallTest("point", "point", ()), CallTest("myint", "myint", ()), CallTest("gen", "gen", ())]
    tests += [CallTest("boom", "boom", ()), StdioTest("stdio", "", "")]
    res = run_one(pool, program, tests, return_outputs=True)
    out = dict(zip([t.name for t in tests], res.outputs))
    expected = {"int": 3, "float": 0.5, "str": "s", "bytes": b"b", "none": None, "complex": 1j}
    expected["nested"] = {"k": [1, (2, 3), {4}, frozenset({5})]}
    for k in kinds:
        assert out[k] == expected[k] and type(out[k]) is type(expected[k])
    for name, type_name in [("point", "solution.Point"), ("myint", "solution.MyInt"), ("gen", "builtins.generator")]:
        assert isinstance(out[name], Opaque) and out[name].type_name == type_name
        assert out[name] != out[name]  # an Opaque equals nothing, itself included
    assert out["boom"] is None and res.verdicts[len(kinds) + 3].status == "exception"
    assert out["stdio"] == ("", False)
    assert run_one(pool, program, tests[:1]).outputs is None  # only when asked for


def test_return_values_nested_non_plain_deep_and_cyclic(pool):
    """Outputs are pickled natively where plain; other objects anywhere inside become their plain
    form (numpy scalars, Counter) or Opaque; nesting past the recursion limit and cycles are
    judged, never a crash of the job or the parent."""
    program = (
        "import collections\nimport numpy as np\nclass P:\n    pass\n"
        "def mixed():\n    return [np.float64(0.5), (np.int64(2), collections.Counter('aab')), {'p': P()}]\n"
        "def deep(n):\n    x = v = []\n    for _ in range(n):\n        v.append([])\n        v = v[0]\n    return x\n"
        "def cyclic():\n    x = []\n    x.append(x)\n    return x\n"
    )
    tests = [
        CallTest("mixed", "mixed", (), expected=[0.5, (2, {"a": 2, "b": 1}), {"p": None}]),
        CallTest("mixed-plain-part", "mixed", ()),
        CallTest("deep", "deep", (5000,), expected=[]),
        CallTest("cyclic", "cyclic", (), expected=[[[]]]),
        CallTest("shallow", "deep", (3,), expected=[[[[]]]]),
    ]
    res = run_one(pool, program, tests, return_outputs=True)
    assert statuses(res) == ["wrong_answer", "pass", "wrong_answer", "wrong_answer", "pass"], res.verdicts
    value = res.outputs[1]
    assert value[:2] == [0.5, (2, {"a": 2, "b": 1})] and type(value[0]) is float and type(value[1][1]) is dict
    assert isinstance(value[2]["p"], Opaque) and value[2]["p"].type_name == "solution.P"


def test_plain_outputs_pickle_to_the_same_bytes_as_pickle_dumps():
    """The parent's shortcut (equal bytes = equal values) needs the job's pickle of a plain value
    to be exactly `pickle.dumps` of it, as the ground truth stores it."""
    import pickle

    from focalpo.sandbox._job import _pickle_plain

    shared = (1, "a")
    for value in [3, 0.5, "s", None, 1j, [1, (2, "x"), {3}, frozenset({4})], {"k": [shared, shared]}, [[[]]] * 3]:
        assert _pickle_plain(value) == pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def test_reporter_widens_its_pipe_for_big_values():
    import fcntl

    from focalpo.sandbox._job import _Reporter

    r, w = os.pipe()
    try:
        reporter = _Reporter(w, batch=False)
        before = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        reporter.widen()
        reporter.widen()  # once is enough
        assert before < 1 << 20 and fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == 1 << 20
    finally:
        os.close(r)
        os.close(w)


def test_huge_return_values_arrive_whole_within_a_short_limit(pool):
    """Values past the "big output" size are announced, converted and streamed after the call:
    a flat list of 2M ints (~18 MB pickled) and 300k nested tuples pass under a 0.5 s limit, and a
    subclass hidden deep in a long list still becomes Opaque (so it cannot fake equality)."""
    program = (
        "def flat(n):\n    return list(range(n))\n"
        "def nested(n):\n    return [(i, str(i)) for i in range(n)]\n"
        "class Sneaky(int):\n    pass\n"
        "def sneaky(n):\n    return list(range(n)) + [Sneaky(n)]\n"
    )
    n, m = 2_000_000, 300_000
    tests = [
        CallTest("flat", "flat", (n,), expected=list(range(n)), time_limit=HANG),
        CallTest("nested", "nested", (m,), expected=[(i, str(i)) for i in range(m)], time_limit=HANG),
        CallTest("sneaky", "sneaky", (m,), expected=list(range(m + 1)), time_limit=HANG),
    ]
    res = run_one(pool, program, tests, return_outputs=True)
    assert statuses(res) == ["pass", "pass", "wrong_answer"]
    assert isinstance(res.outputs[2][-1], Opaque)


def test_stdout_and_stderr_tails_are_captured_and_truncation_flagged(pool):
    """100 lines of 'line NNN' + 40 x's + newline = 100 x 49 = 4900 bytes > 1000 kept."""
    program = (
        "import sys\n"
        "def loud():\n    for i in range(100):\n        print(f'line {i:03d} ' + 'x' * 40)\n"
        "    print('to stderr', file=sys.stderr)\n    return 1"
    )
    limits = replace(FAST, output=1000)
    res = run_one(pool, program, [CallTest("t", "loud", (), expected=1)], limits=limits)
    assert statuses(res) == ["pass"]
    assert len(res.stdout) == 1000 and res.stdout_truncated
    assert res.stdout.endswith("line 099 " + "x" * 40 + "\n")  # the tail is kept
    assert res.stderr == "to stderr\n" and not res.stderr_truncated


def test_deterministic_verdicts_and_random(pool):
    program = TIMEOUT_PROGRAM + (
        "\nimport random\nimport numpy as np\n"
        "def rnd():\n    return [random.random(), hash('abc'), float(np.random.rand())]\n"
    )
    tests = [
        CallTest("ok", "ok", (), expected=1),
        CallTest("busy", "busy", (), expected=1, time_limit=HANG),
        CallTest("wrong", "wrong", (), expected=1),
        CallTest("rnd", "rnd", ()),
    ]
    runs = [run_one(pool, program, tests, return_outputs=True) for _ in range(2)]
    runs.append(execute(program, tests, FAST, return_outputs=True))  # another zygote
    assert len({tuple((v.status, v.message) for v in r.verdicts) for r in runs}) == 1
    values = [r.outputs[3] for r in runs]
    assert values[0] == values[1] == values[2]


# --------------------------------------------------------------------------------------------------
# Segments, zygotes, closing


def test_every_job_starts_from_the_same_heap_whatever_ran_before(pool):
    """The zygote keeps nothing of a job once it is forked, and each job starts its collector
    from the same counts, so jobs with other specs in between leave the heap a job starts from
    as it was: fresh objects get the same addresses. (When the zygote decoded each spec itself,
    they differed every time, and so did the speed of allocation-heavy loops: `sum(range(1,
    n + 1))` ran about 40 % slower after a zygote's first job.)
    """
    probe = "def f():\n    return [id(10**6 + i) for i in range(4)] + [id('x' * k) for k in (20, 60, 200)]\n"
    other = "def g(xs):\n    return sorted(xs)[:3]\n"
    seen = set()
    for k in (1, 30, 7, 0, 55):
        pool.map([Job(other, [CallTest(f"o{j}", "g", (list(range(j * k % 300)),)) for j in range(k + 1)])])
        (r,) = pool.map([Job(probe, [CallTest("t", "f", ())], return_outputs=True)])
        assert r.passed, r.verdicts
        seen.add(tuple(r.outputs[0]))
    assert len(seen) == 1, seen


@pytest.mark.parametrize("failure", ["wrong", "assert", "timeout", "crash"])
def test_segments_under_fail_fast_stop_only_their_own_part(pool, failure):
    """Job.segments: base and plus tests in one job. A failure (judged in the parent or in the
    job, a hard timeout, a crash) ends its segment; the next segment still runs, in a new process."""
    program = (
        "import os, time\n"
        "def f(x):\n"
        "    if x == 'wrong':\n        return -1\n"
        "    if x == 'timeout':\n        while True:\n            pass\n"
        "    if x == 'crash':\n        os._exit(3)\n"
        "    return x\n"
    )
    bad = AssertTest("b1", "assert f(0) == 1") if failure == "assert" else CallTest("b1", "f", (failure,), expected=failure, time_limit=0.3)
    tests = [
        CallTest("b0", "f", (1,), expected=1), bad, CallTest("b2", "f", (2,), expected=2),
        CallTest("p0", "f", (3,), expected=3), CallTest("p1", "f", ("wrong",), expected=0), CallTest("p2", "f", (4,), expected=4),
        CallTest("q0", "f", (5,), expected=5),
    ]  # fmt: skip
    first = {"wrong": "wrong_answer", "assert": "wrong_answer", "timeout": "timeout", "crash": "crashed"}[failure]
    res = pool.map([Job(program, tests, replace(FAST, fail_fast=True), segments=[3, 6])])[0]
    assert statuses(res) == ["pass", first, "not_run", "pass", "wrong_answer", "not_run", "pass"], res.verdicts
    res = pool.map([Job(program, tests, replace(FAST, fail_fast=False), segments=[3, 6])])[0]
    assert statuses(res) == ["pass", first, "pass", "pass", "wrong_answer", "pass", "pass"], res.verdicts


def test_a_program_that_fails_to_load_fails_every_segment(pool):
    tests = [CallTest("b0", "f", (), expected=1), CallTest("p0", "f", (), expected=1)]
    res = pool.map([Job("raise ValueError('no')", tests, replace(FAST, fail_fast=True), segments=[1])])[0]
    assert statuses(res) == ["exception", "exception"] and res.load_error == "ValueError: no"


def test_zygote_is_single_threaded(pool):
    """Forking a multi-threaded process is unsafe and spinning BLAS threads waste a core: numpy,
    imported by the zygote for the first job that uses it, must not start a thread pool there."""
    assert statuses(run_one(pool, "import numpy as np\ndef f():\n    return int(np.ones(3).sum())", [CallTest("t", "f", (), expected=3)])) == ["pass"]
    pid = pool._slots[0].proc.pid
    assert os.listdir(f"/proc/{pid}/task") == [str(pid)]


def test_zygote_does_not_import_threading():
    """threading's after-fork hook runs in every job (~130 page faults, ~0.3 ms): the zygote keeps
    it (and subprocess, which imports it) out until a program needs them."""
    program = "import sys\ndef f():\n    return [m for m in ('threading', 'subprocess') if m in sys.modules]"
    with ExecPool(workers=1, limits=FAST) as fresh:
        res = run_one(fresh, program, [CallTest("t", "f", (), expected=[])])
    assert statuses(res) == ["pass"], res.verdicts


def test_on_demand_modules_are_imported_by_the_zygote_for_the_first_job_that_mentions_them():
    probe = Job("import sys\ndef f():\n    return ('num' + 'py') in sys.modules", [CallTest("t", "f", ())], return_outputs=True)
    user = Job(
        "import numpy as np\ndef f():\n    return [float(np.random.rand()), int(np.arange(4).sum())]",
        # numpy's classes are known classes once the zygote imported it, not the program's: the
        # rewritten assert compares np.int64 with int instead of failing it as a program object
        [CallTest("rand", "f", ()), AssertTest("sum", "assert np.arange(3).sum() == 3")],
        return_outputs=True,
    )
    with ExecPool(workers=1, limits=FAST) as lazy:
        before = lazy.map([probe])[0].outputs
        first, second = lazy.map([user, user])
        after = lazy.map([probe])[0].outputs
    with ExecPool(workers=1, limits=FAST, preload=(*DEFAULT_PRELOAD, "numpy")) as eager:
        warm = eager.map([user])[0]
    assert before == [False] and after == [True]
    assert statuses(first) == statuses(second) == statuses(warm) == ["pass", "pass"]
    assert first.outputs[0] == second.outputs[0] == warm.outputs[0]  # seeded the same either way


def test_job_imports_are_imported_by_the_zygote_before_the_job():
    probe = "import sys\ndef f():\n    return 'csv' in sys.modules"
    tests = [CallTest("t", "f", ())]
    with ExecPool(workers=1, limits=FAST) as fresh:
        results = fresh.map([Job(probe, tests, return_outputs=True), Job(probe, tests, return_outputs=True, imports=("csv",)),
                             Job(probe, tests, return_outputs=True)])  # fmt: skip
    assert [r.outputs for r in results] == [[False], [True], [True]]  # and it stays imported


    # closing the pool killed the job; its thread ends on the lost zygote


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_closing_the_pool_ends_a_running_job_at_once():
    """close() while a job runs: the zygote kills the job and exits at once, where the pool used
    to wait 5 s for it (then kill it) while the job could run on to its time limit; the caller
    of map gets an error, not verdicts."""
    spin = Job("def f():\n    while True:\n        pass", [CallTest("t", "f", (), expected=1, time_limit=60.0)])
    one = ExecPool(workers=1, limits=replace(FAST, test_time=60.0))
    zygote = one._slots[0].proc
    errors: list[BaseException] = []

    def run():
        try:
            one.map([spin])
        except BaseException as e:  # noqa: BLE001 - checked below
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not _children(zygote.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    (job,) = _children(zygote.pid)
    t0 = time.monotonic()
    one.close()
    assert time.monotonic() - t0 < 3  # it took 5 s
    assert zygote.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(job, 0)  # killed and reaped
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], SandboxError) and "closed" in str(errors[0])
