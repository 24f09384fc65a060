"""Tests of a job's module name and extra files, traceback tails, and line coverage (CodeFlow).

A model-written test file runs against a model-written solution file: the solution is importable
under its own name (`Job.module`), may read extra files (`Job.files`), failures come back with a
traceback tail (`Verdict.traceback`, `ExecResult.load_traceback`), and `Job(coverage=True)`
reports the solution's line coverage, merged over the job processes of a run.

Run: .venv/bin/python -m pytest tests/sandbox/test_files_coverage.py -q
"""

from __future__ import annotations

import pickle
import sys
import types
from dataclasses import replace

import pytest
from sandbox_helpers import FAST, HANG, run_one, statuses

from focalpo.sandbox import AssertTest, CallTest, Job, StdioTest, UnittestTest, _job, execute
from focalpo.sandbox import slot as slot_module
from focalpo.sandbox.asserts import rewrite_asserts
from focalpo.sandbox.feedback import CoverageLines

FIB = '''\
def fib(n):
    assert n >= 0, "n must be non-negative"
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)
'''

# Statements: 1 (def), 3 (if), 4, 6, 7; line 2 is a docstring and line 5 (`else:`) no statement.
PARITY = '''\
def parity(n):
    """Even or odd."""
    if n % 2 == 0:
        word = "even"
    else:
        word = "odd"
    return word
'''

# A test that ignores the in-process timer, so the parent must kill the job process.
HARD_HANG = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n"


# --------------------------------------------------------------------------------------------------
# Module name and extra files


def test_assert_test_imports_the_program_by_its_module_name(pool):
    tests = [
        AssertTest("fib", "from fib import fib\nassert fib(10) == 55"),
        AssertTest("name", "import fib as m\nassert m.__name__ == 'fib' and m.fib.__module__ == 'fib'"),
        AssertTest("no_solution", "import sys\nassert 'solution' not in sys.modules"),
    ]
    res = run_one(pool, FIB, tests, module="fib")
    assert statuses(res) == ["pass", "pass", "pass"], res.verdicts


def test_unittest_module_imports_the_program_by_its_module_name(pool):
    module = (
        "import unittest\nfrom fib import fib\n\n"
        "class TestFib(unittest.TestCase):\n"
        "    def test_small(self):\n        self.assertEqual([fib(i) for i in range(6)], [0, 1, 1, 2, 3, 5])\n"
        "    def test_wrong(self):\n        self.assertEqual(fib(5), 6)\n"
    )
    tests = [UnittestTest("small", module, "TestFib.test_small"), UnittestTest("wrong", module, "TestFib.test_wrong")]
    res = run_one(pool, FIB, tests, module="fib")
    assert statuses(res) == ["pass", "wrong_answer"]
    assert res.verdicts[1].message == "AssertionError: 5 != 6"


def test_extra_files_data_and_helper_module(pool):
    """The program reads a JSON file from a subdirectory and imports a helper module; both are
    written into the job's working directory, which the next job no longer has."""
    program = (
        "import json, os\nfrom helper import double\n"
        "NUMBERS = json.load(open('data/numbers.json'))\n"
        "def total():\n    return double(sum(NUMBERS))\n"
        "def here():\n    return os.path.basename(__file__), os.path.dirname(__file__) == os.getcwd()\n"
    )
    files = {"data/numbers.json": "[1, 2, 3, 4]", "helper.py": "def double(x):\n    return 2 * x\n"}
    tests = [
        CallTest("total", "total", (), expected=20),
        CallTest("here", "here", (), expected=("solution.py", True)),
        AssertTest("path0", "import sys, os\nassert sys.path[0] == os.getcwd()"),
        AssertTest("owned", "import os\nassert os.stat('helper.py').st_uid == os.getuid()"),
    ]
    res = run_one(pool, program, tests, files=files)
    assert statuses(res) == ["pass"] * 4, res.verdicts
    after = run_one(pool, "import os\n", [AssertTest("gone", "assert not os.path.exists('data/numbers.json')")])
    assert statuses(after) == ["pass"]


def test_an_extra_file_over_the_size_limit_is_a_load_error(pool):
    res = run_one(pool, FIB, [CallTest("c", "fib", (3,))], limits=replace(FAST, file_size=1000), files={"big.txt": "x" * 5000})
    assert res.load_error == "could not write the file 'big.txt': File too large"
    assert [(v.status, v.message) for v in res.verdicts] == [("exception", "program failed to load: " + res.load_error)]


@pytest.mark.parametrize(
    "files, bad",
    [
        ({"/etc/passwd": "x"}, "'/etc/passwd' is an absolute path"),
        ({"../escape.txt": "x"}, "'../escape.txt' has a '..' component"),
        ({"data/../../x": "x"}, "'data/../../x' has a '..' component"),
        ({"": "x"}, "'' is not a file name"),
        ({"a//b": "x"}, "'a//b' has an empty component"),
        ({"dir/": "x"}, "'dir/' has an empty component"),
        ({"./x": "x"}, "'./x' has a '.' component"),
        ({"fib.py": "x"}, "'fib.py' is the program's own file"),
        ({"data": "x", "data/in.json": "{}"}, "'data' is both a file and the directory of another file"),
        ({"n.bin": b"\x00"}, "'n.bin' must map to text (str), not bytes"),
    ],
)
def test_bad_file_paths_are_rejected(files, bad):
    with pytest.raises(ValueError) as e:
        Job(FIB, [], module="fib", files=files)
    assert bad in str(e.value)


@pytest.mark.parametrize("module", ["1fib", "fib.py", "pkg.fib", "", "class", "sys", "os", "unittest", "pickle",
                                    "signal", "types", "builtins", "coverage", "focalpo", "test_module"])  # fmt: skip
def test_bad_module_names_are_rejected(module):
    with pytest.raises(ValueError, match="Job.module"):
        Job(FIB, [], module=module)


def test_execute_rejects_a_bad_path_before_running():
    with pytest.raises(ValueError, match="'../x' has a '..' component"):
        execute(FIB, [AssertTest("t", "assert True")], FAST, files={"../x": ""})


# --------------------------------------------------------------------------------------------------
# Tracebacks


def test_failing_assert_traceback_names_the_program_file_and_line(pool):
    """The assert fails inside fib.py: the tail shows the test line as written (not the rewritten
    assert the job ran) and the program's line, and no harness frame."""
    res = run_one(pool, FIB, [AssertTest("neg", "from fib import fib\n\nassert fib(-1) == 0")], module="fib")
    v = res.verdicts[0]
    assert (v.status, v.message) == ("wrong_answer", "AssertionError: n must be non-negative")
    assert v.traceback == (
        "Traceback (most recent call last):\n"
        '  File "test.py", line 3, in <module>\n'
        "    assert fib(-1) == 0\n"
        '  File "fib.py", line 2, in fib\n'
        '    assert n >= 0, "n must be non-negative"\n'
        "AssertionError: n must be non-negative"
    )
    assert "_job.py" not in v.traceback and "unittest" not in v.traceback


def test_traceback_through_setup_and_extra_file(pool):
    """A pytest-style test function in the setup, called by the test, into a helper file."""
    program = "from helper import check\ndef fib(n):\n    return check(n)\n"
    helper = "def check(n):\n    if n < 0:\n        raise ValueError(f'bad n: {n}')\n    return n\n"
    setup = "from fib import fib\n\ndef test_negative():\n    assert fib(-2) == 0\n"
    res = run_one(pool, program, [AssertTest("t", "test_negative()", setup=setup)], module="fib", files={"helper.py": helper})
    v = res.verdicts[0]
    assert (v.status, v.message) == ("exception", "ValueError: bad n: -2")
    assert v.traceback == (
        "Traceback (most recent call last):\n"
        '  File "test.py", line 1, in <module>\n    test_negative()\n'
        '  File "test_setup.py", line 4, in test_negative\n    assert fib(-2) == 0\n'
        '  File "fib.py", line 3, in fib\n    return check(n)\n'
        '  File "helper.py", line 3, in check\n    raise ValueError(f\'bad n: {n}\')\n'
        "ValueError: bad n: -2"
    )


def test_traceback_of_unittest_failure_and_call_exception(pool):
    module = "import unittest\nfrom solution import half\n\nclass T(unittest.TestCase):\n    def test_half(self):\n        self.assertEqual(half(3), 1)\n"
    program = "def half(n):\n    return n / 2\n"
    res = run_one(pool, program, [UnittestTest("u", module, "T.test_half"), CallTest("c", "half", ("x",))])
    assert statuses(res) == ["wrong_answer", "exception"]
    assert res.verdicts[0].traceback == (
        'Traceback (most recent call last):\n  File "test_module.py", line 6, in test_half\n'
        "    self.assertEqual(half(3), 1)\nAssertionError: 1.5 != 1"
    )
    assert res.verdicts[1].traceback == (
        'Traceback (most recent call last):\n  File "solution.py", line 2, in half\n    return n / 2\n'
        "TypeError: unsupported operand type(s) for /: 'str' and 'int'"
    )


def test_traceback_keeps_the_last_8_frames_and_2000_characters(pool):
    program = "def down(n):\n    if n == 0:\n        raise ValueError('x' * 5000)\n    return down(n - 1)\n"
    res = run_one(pool, program, [CallTest("deep", "down", (20,))])
    tb = res.verdicts[0].traceback
    assert len(tb) == 2000 and tb.startswith("...\n") and tb.endswith("x" * 100)
    res = run_one(pool, program.replace("'x' * 5000", "'deep'"), [CallTest("deep", "down", (20,))])
    tb = res.verdicts[0].traceback
    assert tb.count('  File "solution.py"') == 8 and tb.endswith("line 3, in down\n    raise ValueError('deep')\nValueError: deep")


def test_no_traceback_for_passing_and_timed_out_tests(pool):
    program = "def f(x):\n    while x:\n        pass\n    return 1\n"
    res = run_one(pool, program, [CallTest("ok", "f", (0,), expected=1), CallTest("loop", "f", (1,), time_limit=HANG)])
    assert statuses(res) == ["pass", "timeout"]
    assert [v.traceback for v in res.verdicts] == ["", ""]


FRAME = "import os, pickle, struct\ndef frame(o):\n    d = pickle.dumps(o)\n    return struct.pack('<I', len(d)) + d\n"


@pytest.mark.parametrize(
    "forged",
    [
        "('tb', 0, 'not a list', '')",
        "('tb', 0, [('harness', 'x.py', 1, 'f')], '')",
        "('tb', 5, [], '')",  # not the current test
        "('cov', [1, 2])",  # no coverage was asked for
    ],
)
def test_forged_traceback_and_coverage_frames_are_protocol_errors(pool, forged):
    program = FRAME + f"def f():\n    os.write(3, frame({forged}))\n    return 1\n"
    res = run_one(pool, program, [CallTest("t", "f", (), expected=1)])
    assert [(v.status, v.message) for v in res.verdicts] == [("crashed", "the job wrote an invalid result frame")]


def test_a_forged_traceback_is_capped_in_the_parent(pool):
    forged = "('tb', 0, [('program', 'solution.py', 7, 'f' * 10000)] * 50, 'E' * 100000)"
    program = FRAME + f"def f():\n    os.write(3, frame({forged}) + frame(('test', 0, 'exception', 'X', 0.0, None)))\n    return 1\n"
    res = run_one(pool, program, [CallTest("t", "f", (), expected=1)])
    assert (res.verdicts[0].status, res.verdicts[0].message) == ("exception", "X")
    assert res.verdicts[0].traceback == "...\n" + "E" * 1996


def test_load_error_traceback(pool):
    res = run_one(pool, "import math\nx = math.sqrt(4)\ny = undefined_name + x\n", [CallTest("c", "f", ())])
    assert res.load_error == "NameError: name 'undefined_name' is not defined"
    assert res.load_traceback == (
        'Traceback (most recent call last):\n  File "solution.py", line 3, in <module>\n'
        "    y = undefined_name + x\nNameError: name 'undefined_name' is not defined"
    )
    # A syntax error of a program on disk: the job's directory is not named.
    res = run_one(pool, "def fib(n:\n    return n\n", [CallTest("c", "fib", (1,))], module="fib", coverage=True)
    assert statuses(res) == ["exception"]
    assert res.load_traceback == '  File "fib.py", line 1\n    def fib(n:\n           ^\nSyntaxError: \'(\' was never closed'
    assert res.verdicts[0].traceback == ""


def test_rewritten_asserts_keep_their_line_numbers():
    code = "x = 1  # set up\n\nassert f(x) == [1,\n  2], 'msg'\nassert g(x)\ny = x\n"
    out = rewrite_asserts(code)
    assert out == (
        "x = 1  # set up\n\nassert (__focalpo_eq__(f(x), [1, 2])\n), 'msg'\nassert (__focalpo_truth__(g(x)))\ny = x\n"
    )
    assert rewrite_asserts("x = 1\n") == "x = 1\n"


# --------------------------------------------------------------------------------------------------
# Coverage


def test_coverage_lists_the_lines_of_the_untaken_branch(pool):
    res = run_one(pool, PARITY, [CallTest("even", "parity", (2,), expected="even")], module="parity", coverage=True)
    assert statuses(res) == ["pass"]
    assert res.coverage == {"statements": 5, "executed": [1, 3, 4, 7], "missing": [6], "percent": 80.0}
    both = run_one(pool, PARITY, [CallTest("e", "parity", (2,)), CallTest("o", "parity", (3,))], coverage=True)
    assert both.coverage == {"statements": 5, "executed": [1, 3, 4, 6, 7], "missing": [], "percent": 100.0}
    assert both.stderr == ""  # coverage.py's warnings do not reach the program's output


def test_coverage_of_a_stdio_program_and_off_by_default(pool):
    program = "n = int(input())\nif n > 0:\n    print('pos')\nelse:\n    print('neg')\n"
    res = run_one(pool, program, [StdioTest("s", "5\n", "pos\n")], coverage=True)
    assert statuses(res) == ["pass"]
    assert res.coverage == {"statements": 4, "executed": [1, 2, 3], "missing": [5], "percent": 75.0}
    assert run_one(pool, program, [StdioTest("s", "5\n", "pos\n")]).coverage is None


def test_coverage_is_merged_across_a_hard_timeout(pool):
    """Test 2 ignores the in-process timer and is killed; test 3 runs in a fresh job process. The
    lines of test 1 (3) and test 3 (4, 5) are both executed; 6 alone is missing."""
    program = 'def sign(x):\n    if x > 0:\n        return "pos"\n    if x < 0:\n        return "neg"\n    return "zero"\n'
    tests = [
        CallTest("pos", "sign", (1,), expected="pos"),
        AssertTest("hang", HARD_HANG, time_limit=HANG),
        CallTest("neg", "sign", (-1,), expected="neg"),
    ]
    res = run_one(pool, program, tests, coverage=True)
    assert statuses(res) == ["pass", "timeout", "pass"]
    assert res.verdicts[1].message == f"exceeded {HANG:g}s (killed)"
    assert res.coverage == {"statements": 6, "executed": [1, 2, 3, 4, 5], "missing": [6], "percent": 100.0 * 5 / 6}


def test_coverage_of_a_load_error_counts_the_lines_that_ran(pool):
    program = "a = 1\nb = a + 1\nc = b / 0\nd = 4\n"
    res = run_one(pool, program, [CallTest("c", "f", ())], coverage=True)
    assert res.load_error == "ZeroDivisionError: division by zero"
    assert res.coverage == {"statements": 4, "executed": [1, 2, 3], "missing": [4], "percent": 75.0}


def test_coverage_without_coverage_py_in_the_job(tmp_path, monkeypatch):
    """Where coverage.py cannot be imported, the job says so in a "cov" frame (instead of failing
    anything), and the result's coverage is that error. Driven here, in-process, on the job's own
    _Runner: a zygote cannot be made to miss coverage.py, since its private /tmp hides tmp_path."""
    monkeypatch.setitem(sys.modules, "coverage", None)  # `import coverage` -> ImportError
    sent = []
    runner = _job._Runner({"program": FIB, "module": "fib", "coverage": True, "workdir": str(tmp_path), "limits": {"output": 1}})
    runner.reporter = types.SimpleNamespace(send=lambda obj, urgent=False: sent.append(obj))
    assert runner._prepare_directory() == ""
    assert (tmp_path / "fib.py").read_text() == FIB and runner.cov is None
    runner.report_coverage()
    runner.report_coverage(stop=True)
    assert sent == [("cov", "coverage.py is not installed")]
    lines = CoverageLines(FIB)
    assert lines.add(sent[0][1]) and lines.report() == {"error": "coverage.py is not installed"}


# --------------------------------------------------------------------------------------------------
# The default path


def test_default_jobs_are_unchanged(pool, monkeypatch):
    """No module name, files or coverage: the job gets exactly the spec keys it always got, and
    the results are those of before (tracebacks aside, which only failing tests carry)."""
    specs = []
    send = slot_module.send_raw  # the job's spec goes pickled, as the zygote's second frame
    monkeypatch.setattr(slot_module, "send_raw", lambda sock, data: (specs.append(pickle.loads(data)), send(sock, data)))
    program = "def add(a, b):\n    print('adding')\n    return a + b\n"
    tests = [
        CallTest("ok", "add", (1, 2), expected=3),
        CallTest("wrong", "add", (1, 2), expected=4),
        AssertTest("assert", "assert add(2, 2) == 5"),
        StdioTest("stdio", "", ""),
    ]
    res = run_one(pool, program, tests)
    assert [set(s) for s in specs] == [{"program", "tests", "limits", "load_time", "needs_namespace", "batch"}]
    assert [(v.name, v.status, v.message) for v in res.verdicts] == [
        ("ok", "pass", ""),
        ("wrong", "wrong_answer", "expected 4, got 3"),
        ("assert", "wrong_answer", "AssertionError"),
        ("stdio", "pass", ""),
    ]
    assert [v.traceback for v in res.verdicts] == ["", "", 'Traceback (most recent call last):\n  File "test.py", line 1, in <module>\n    assert add(2, 2) == 5\nAssertionError', ""]
    assert (res.load_error, res.load_traceback, res.coverage) == ("", "", None)
    assert (res.stdout, res.stderr) == ("adding\n" * 3, "")
