"""Test files -> sandbox tests, and the error feedback (focalpo.pipelines.codeflow_tests).

The end-to-end tests run converted test files in the sandbox against `add`, with one deliberately
failing check per style, so each verdict is known by hand.

Run: .venv/bin/python -m pytest tests/pipelines/test_codeflow_tests.py -q
"""

from __future__ import annotations

import pytest

from focalpo.pipelines.codeflow_tests import ConvertedTests, format_feedback, test_file_to_tests
from focalpo.sandbox import execute
from focalpo.sandbox.types import AssertTest, ExecResult, UnittestTest, Verdict

FIB = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"



# --------------------------------------------------------------------------------------------------
# Test files -> sandbox tests

UNITTEST_FILE = """import unittest
from fib import fib


class TestFib(unittest.TestCase):
    def setUp(self):
        self.n = 10

    def test_ten(self):
        self.assertEqual(fib(self.n), 55)

    def test_zero(self):
        self.assertEqual(fib(0), 0)


class Helper:
    def test_not_a_testcase(self):
        pass


if __name__ == "__main__":
    unittest.main()
"""

PYTEST_FILE = """import pytest
from fib import fib


def test_ten():
    assert fib(10) == 55


def test_zero():
    assert fib(0) == 0


@pytest.mark.parametrize("n", [1, 2])
def test_small(n):
    assert fib(n) == 1


def test_fixture(tmp_path):
    assert tmp_path


if __name__ == "__main__":
    test_ten()
    print("ok")
"""

ASSERT_FILE = """from fib import fib

cases = [(0, 0), (1, 1)]
assert fib(10) == 55
assert fib(
    2
) == 1
for n, want in cases:
    assert fib(n) == want
print("done")

if __name__ == "__main__":
    big = fib(20)
    assert big == 6765
"""


def test_unittest_style():
    converted = test_file_to_tests(UNITTEST_FILE, "fib", time_limit=2.0)
    module = UNITTEST_FILE.split('\n\n\nif __name__')[0] + "\n"
    assert converted.tests == [
        UnittestTest("TestFib.test_ten", module, "TestFib.test_ten", 2.0),
        UnittestTest("TestFib.test_zero", module, "TestFib.test_zero", 2.0),
    ]
    assert converted.skipped == [] and isinstance(converted, ConvertedTests)


def test_pytest_style_and_parametrized_skipped():
    converted = test_file_to_tests(PYTEST_FILE, "fib")
    setup = PYTEST_FILE.split('\n\n\nif __name__')[0] + "\n"
    assert converted.tests == [AssertTest("test_ten", "test_ten()", setup), AssertTest("test_zero", "test_zero()", setup)]
    tests, skipped = converted
    assert tests is converted.tests and skipped == ["test_small", "test_fixture"]


def test_assert_style():
    converted = test_file_to_tests(ASSERT_FILE, "fib")
    # Checks are blanked out (line numbers stay those of the file); `big = ...` joins the setup.
    setup = 'from fib import fib\n\ncases = [(0, 0), (1, 1)]\n\n\n\n\n\n\nprint("done")\nbig = fib(20)\n'
    assert converted.tests == [
        AssertTest("assert_0", "assert fib(10) == 55", setup),
        AssertTest("assert_1", "assert fib(\n    2\n) == 1", setup),
        AssertTest("assert_2", "for n, want in cases:\n    assert fib(n) == want", setup),
        AssertTest("assert_3", "assert big == 6765", setup),
    ]


def test_pasted_copy_of_the_solution_is_dropped_from_setup():
    text = "from fib import fib as f, helper\n\ndef f(n):\n    return 55\n\nclass helper:\n    pass\n\nassert f(10) == 55\n"
    assert test_file_to_tests(text, "fib").tests == [AssertTest("assert_0", "assert f(10) == 55", "from fib import fib as f, helper\n")]
    # Under another module name the definitions are the file's own helpers and stay.
    assert test_file_to_tests(text, "solution").tests[0].setup == text.replace("assert f(10) == 55\n", "").rstrip() + "\n"


def test_mixed_file_names_unique_and_in_order():
    text = """import unittest
from fib import fib

def check(f):
    assert f(3) == 2

assert fib(1) == 1

def test_one():
    assert fib(1) == 1

class T(unittest.TestCase):
    def test_one(self):
        self.assertEqual(fib(1), 1)

    @unittest.skip("later")
    def test_later(self):
        pass

def test_one():
    assert fib(2) == 1

check(fib)
test_one()
unittest.main()
"""
    converted = test_file_to_tests(text, "fib")
    assert [t.name for t in converted.tests] == ["assert_0", "test_one", "T.test_one", "assert_1"]
    assert [t.code for t in converted.tests if isinstance(t, AssertTest)] == ["assert fib(1) == 1", "test_one()", "check(fib)"]
    # The assert is blanked; the calls of check/test_one and unittest.main() at the end are dropped.
    lines = text.split("\n")
    setup = "\n".join(lines[:6] + [""] + lines[7:21]) + "\n"
    assert {t.setup if isinstance(t, AssertTest) else t.module for t in converted.tests} == {setup}
    assert setup.endswith("def test_one():\n    assert fib(2) == 1\n") and converted.skipped == ["T.test_later"]


def test_pytest_classes():
    text = """from fib import fib

class TestFib:
    def test_ten(self):
        assert fib(10) == 55

    def helper(self):
        return 1

    def test_fixture(self, tmp_path):
        pass

class TestWithHooks:
    def setup_method(self, method):
        self.n = 1

    def test_one(self):
        assert fib(self.n) == 1
"""
    converted = test_file_to_tests(text, "fib")
    assert converted.tests == [AssertTest("TestFib.test_ten", "TestFib().test_ten()", text)]
    assert converted.skipped == ["TestFib.test_fixture", "TestWithHooks.test_one"]
    result = ExecResult(verdicts=[verdict("TestFib.test_ten", "wrong_answer", "AssertionError")])
    assert format_feedback(result, converted.tests) == (
        "1 of 1 tests failed.\n\nFAILED TestFib.test_ten (wrong_answer): AssertionError\n"
        "    def test_ten(self):\n        assert fib(10) == 55"
    )


def test_nothing_to_run_and_unparsable():
    assert test_file_to_tests("from fib import fib\nprint(fib(3))\n", "fib") == ([], [])
    with pytest.raises(ValueError, match="test file does not parse: .* \\(line 1\\)"):
        test_file_to_tests("assert fib(", "fib")


# --------------------------------------------------------------------------------------------------
# End to end: converted tests run in the sandbox (the program's module is "solution" today)

ADD = "def add(a, b):\n    return a + b\n"
E2E_FILES = {
    "unittest": (
        "import unittest\nfrom solution import add\n\nclass TestAdd(unittest.TestCase):\n"
        "    def test_small(self):\n        self.assertEqual(add(1, 2), 3)\n\n"
        "    def test_wrong(self):\n        self.assertEqual(add(2, 2), 5)\n\n"
        'if __name__ == "__main__":\n    unittest.main()\n',
        {"TestAdd.test_small": "pass", "TestAdd.test_wrong": "wrong_answer"},
    ),
    "pytest": (
        "from solution import add\n\ndef test_small():\n    assert add(1, 2) == 3\n\n"
        "def test_wrong():\n    assert add(2, 2) == 5\n\n"
        "class TestAdd:\n    def test_zero(self):\n        assert add(0, 0) == 0\n\n"
        'if __name__ == "__main__":\n    test_small()\n    test_wrong()\n',
        {"test_small": "pass", "test_wrong": "wrong_answer", "TestAdd.test_zero": "pass"},
    ),
    "asserts": (
        "import solution\nfrom solution import add\n\nassert add(1, 2) == 3\nassert solution.add(2, 2) == 5\n"
        'if __name__ == "__main__":\n    x = add(0, 0)\n    assert x == 0\n',
        {"assert_0": "pass", "assert_1": "wrong_answer", "assert_2": "pass"},
    ),
}


@pytest.mark.parametrize("style", sorted(E2E_FILES))
def test_converted_tests_run_in_sandbox(style):
    test_code, expected = E2E_FILES[style]
    tests, skipped = test_file_to_tests(test_code, "solution")
    result = execute(ADD, tests)
    assert result.load_error == ""
    assert {v.name: v.status for v in result.verdicts} == expected and skipped == []


# --------------------------------------------------------------------------------------------------
# format_feedback


def verdict(name: str, status: str, message: str = "", traceback: str = "") -> Verdict:
    v = Verdict(name, status, message)
    v.traceback = traceback  # field being added to Verdict; format_feedback reads it with getattr
    return v


TB = 'Traceback (most recent call last):\n  File "test.py", line 1, in <module>\nAssertionError'


def test_feedback_load_error():
    result = ExecResult(verdicts=[verdict("assert_0", "not_run")], load_error="NameError: name 'x' is not defined")
    result.load_traceback = (
        'Traceback (most recent call last):\n  File "solution.py", line 3, in <module>\nNameError: name \'x\' is not defined'
    )
    assert format_feedback(result, []) == (
        "The solution failed to load: NameError: name 'x' is not defined\n\n" + result.load_traceback
    )


def test_feedback_one_failure():
    tests = test_file_to_tests(PYTEST_FILE, "fib").tests + test_file_to_tests(UNITTEST_FILE, "fib").tests
    result = ExecResult(verdicts=[
        verdict("test_ten", "pass"), verdict("test_zero", "wrong_answer", "AssertionError", TB),
        verdict("TestFib.test_ten", "pass"), verdict("TestFib.test_zero", "pass"),
    ])  # fmt: skip
    assert format_feedback(result, tests) == (
        "1 of 4 tests failed.\n\n"
        "FAILED test_zero (wrong_answer): AssertionError\n    def test_zero():\n        assert fib(0) == 0\n\n" + TB
    )
    assert format_feedback(ExecResult(verdicts=[verdict("test_ten", "pass")]), tests) == ""


def test_feedback_five_failures():
    tests = test_file_to_tests(ASSERT_FILE, "fib").tests + test_file_to_tests(UNITTEST_FILE, "fib").tests
    names = ["assert_0", "TestFib.test_zero", "assert_2", "assert_3", "assert_1"]
    result = ExecResult(verdicts=[verdict(n, "exception", f"ValueError: bad {i}", TB) for i, n in enumerate(names)])
    assert format_feedback(result, tests) == (
        "5 of 5 tests failed.\n\n"
        "FAILED assert_0 (exception): ValueError: bad 0\n    assert fib(10) == 55\n\n" + TB + "\n\n"
        "FAILED TestFib.test_zero (exception): ValueError: bad 1\n"
        "    def test_zero(self):\n        self.assertEqual(fib(0), 0)\n\n"
        "FAILED assert_2 (exception): ValueError: bad 2\n"
        "    for n, want in cases:\n        assert fib(n) == want\n\n"
        "... and 2 more failing tests."
    )


def test_feedback_truncation_bound():
    long_tb = "Traceback (most recent call last):\n" + "".join(f'  File "x.py", line {i}, in f\n    f()\n' for i in range(200))
    long_tb += "RecursionError: maximum recursion depth exceeded"
    tests = test_file_to_tests(ASSERT_FILE, "fib").tests
    result = ExecResult(verdicts=[verdict(t.name, "exception", "E: " + "m" * 1000, long_tb) for t in tests])
    full = format_feedback(result, tests, max_chars=100_000)
    assert long_tb in full and full.count("FAILED") == 3
    for max_chars in (1500, 800, 400, 120, 30, 5):
        text = format_feedback(result, tests, max_chars=max_chars)
        assert len(text) <= max_chars, max_chars
    text = format_feedback(result, tests, max_chars=1500)
    # The head of the report and the tail of the traceback (from a frame on) survive; the fourth
    # failure no longer fits and is counted; messages are clipped to 300 characters.
    assert text.startswith("4 of 4 tests failed.\n\nFAILED assert_0 (exception): E: " + "m" * 294 + "...\n")
    assert 'assert fib(10) == 55\n\nTraceback (most recent call last):\n  ...\n  File "x.py", line 19' in text
    assert "    f()\nRecursionError: maximum recursion depth exceeded\n\nFAILED assert_1 (exception)" in text
    assert "FAILED assert_3" not in text and text.endswith("        assert fib(n) == want\n\n... and 1 more failing test.")
    # Too small for even one failure block: whole first lines, then a marker.
    assert format_feedback(result, tests, max_chars=120) == "4 of 4 tests failed.\n\n[... truncated]"
