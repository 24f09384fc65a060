"""Tests of focalpo.eval.errors: normalised error types of failing samples and their table.

Run: .venv/bin/python -m pytest tests/eval/test_errors.py -q
"""

from __future__ import annotations

import math

import pytest
from eval_helpers import record

from focalpo.eval.errors import error_table, error_type, sample_error_type


@pytest.mark.parametrize(
    "message",
    [
        "IndexError: list index out of range",
        "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
        "TypeError: '<' not supported between instances of 'NoneType' and 'int'",
        'TypeError: can only concatenate str (not "int") to str',
        "TypeError: can't multiply sequence by non-int of type 'float'",
        "ValueError: math domain error",
        "ZeroDivisionError: division by zero",
        "RecursionError: maximum recursion depth exceeded",
        "AssertionError",
    ],
)
def test_error_type_keeps_informative_messages(message):
    assert error_type(message) == message


@pytest.mark.parametrize(
    "message,expected",
    [
        ("KeyError: 'abc'", "KeyError: 'X'"),
        ("KeyError: 42", "KeyError: N"),
        ("KeyError: ('a', -1)", "KeyError: ('X', N)"),
        ("NameError: name 'foo' is not defined", "NameError: name 'X' is not defined"),
        ("NameError: name 'fo' is not defined. Did you mean: 'foo'?", "NameError: name 'X' is not defined"),
        (
            "IndexError: index 5 is out of bounds for axis 0 with size 3",
            "IndexError: index N is out of bounds for axis N with size N",
        ),
        (
            "TypeError: solve() missing 1 required positional argument: 'nums'",
            "TypeError: solve() missing N required positional argument: 'X'",
        ),
        ("TypeError: 'Foo' object is not callable", "TypeError: 'X' object is not callable"),
        (
            "AttributeError: 'NoneType' object has no attribute 'append'",
            "AttributeError: 'NoneType' object has no attribute 'X'",
        ),
        (
            "ValueError: invalid literal for int() with base 10: 'abc'",
            "ValueError: invalid literal for int() with base N: 'X'",
        ),
        # outside TypeError/AttributeError even a type name is a value
        ("KeyError: 'int'", "KeyError: 'X'"),
        (
            "ValueError: not enough values to unpack (expected 3, got 2)",
            "ValueError: not enough values to unpack (expected N, got N)",
        ),
        ("ValueError: expected 2.", "ValueError: expected N."),
        ("ValueError: x=1.5e-3 y=0x7ffe12", "ValueError: x=N y=N"),
        ("SyntaxError: invalid syntax (<string>, line 3)", "SyntaxError: invalid syntax"),
        ("AssertionError: ", "AssertionError"),
        ("AssertionError: \n  more lines", "AssertionError"),
        ("something odd happened 3 times", "something odd happened N times"),
        ("", "UnknownError"),
    ],
)
def test_error_type_normalises_exception_messages(message, expected):
    assert error_type(message) == expected


@pytest.mark.parametrize(
    "status,message,expected",
    [
        ("wrong_answer", "expected 3, got 4", "WrongAnswer"),
        ("timeout", "timed out after 4.0s", "Timeout"),
        ("memory", "MemoryError", "MemoryExceeded"),
        ("crashed", "killed by SIGSEGV", "Crashed: SIGSEGV"),
        ("crashed", "killed by signal 9", "Crashed: SIGKILL"),
        ("crashed", "the process vanished", "Crashed"),
        ("not_run", "", "NotRun"),
        ("not_run", "SyntaxError: invalid syntax (solution.py, line 7)", "SyntaxError: invalid syntax"),
        # messages as focalpo.sandbox.pool writes them
        ("exception", "program failed to load: SyntaxError: invalid syntax (<string>, line 2)", "SyntaxError: invalid syntax"),
        ("crashed", "program killed by SIGKILL while loading", "Crashed: SIGKILL"),
        ("crashed", "exited with code 1 before reporting", "Crashed"),
        ("timeout", "exceeded 4s (killed)", "Timeout"),
    ],
)
def test_error_type_of_statuses(status, message, expected):
    assert error_type(message, status) == expected


def test_error_type_truncates_long_messages():
    t = error_type("ValueError: " + "very long words " * 20, max_len=40)
    assert len(t) <= 40
    assert t.startswith("ValueError: very long words") and t.endswith("...")


def test_error_type_rejects_pass_and_unknown_status():
    with pytest.raises(ValueError, match="passing"):
        error_type("", "pass")
    with pytest.raises(ValueError, match="unknown status 'weird'"):
        error_type("", "weird")


def failure(status, message="", test="t0"):
    return {"test": test, "status": status, "message": message}


def test_sample_error_type_uses_first_real_failure():
    assert sample_error_type(record("t/0", 0, "pass")) is None
    rec = record("t/0", 0, "fail", failures=[failure("not_run"), failure("exception", "KeyError: 'a'"), failure("timeout")])
    assert sample_error_type(rec) == "KeyError: 'X'"
    load_error = record("t/0", 1, "fail", failures=[failure("not_run", "IndentationError: unexpected indent")])
    assert sample_error_type(load_error) == "IndentationError: unexpected indent"
    assert sample_error_type(record("t/0", 2, "fail")) == "UnknownError"
    with pytest.raises(ValueError, match="field 'failures'"):
        sample_error_type({**record("t/0", 3, "fail"), "failures": "boom"})


def test_error_table_counts_shares_and_order():
    records = [
        record("t/0", 0, "pass"),
        record("t/0", 1, "fail", failures=[failure("exception", "KeyError: 'a'")]),
        record("t/0", 2, "fail", failures=[failure("exception", "KeyError: 'b'")]),
        record("t/1", 0, "fail", failures=[failure("wrong_answer", "expected 1, got 2")]),
        record("t/1", 1, "fail", failures=[failure("timeout")]),
        record("t/1", 2, "fail", failures=[failure("exception", "KeyError: 3")]),
    ]
    table = error_table(records)
    assert table == [
        ("KeyError: 'X'", 2, 0.4),
        ("KeyError: N", 1, 0.2),
        ("Timeout", 1, 0.2),
        ("WrongAnswer", 1, 0.2),
    ]
    assert math.fsum(share for _, _, share in table) == pytest.approx(1.0)
    assert error_table([record("t/0", 0, "pass")]) == []
