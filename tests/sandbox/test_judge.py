"""Tests of focalpo.sandbox.judge: how the parent judges call and stdio reports (exact match,
pickled expected outputs, float tolerance, stdout whitespace), and named oracles' registry.

The benchmarks' own oracles are tested in tests/problems/test_oracles.py.
Run: .venv/bin/python -m pytest tests/sandbox/test_judge.py -q
"""

from __future__ import annotations

import pytest
from sandbox_helpers import run_one, statuses

from focalpo.sandbox import NO_EXPECTED, CallTest, StdioTest
from focalpo.sandbox import types as sandbox_types
from focalpo.sandbox.judge import judge_call, register_oracle
from focalpo.sandbox.wire import Pickled

def test_call_exact_match(pool):
    program = "def add(a, b):\n    return a + b\ndef pair(a, b):\n    return (a, b)"
    res = run_one(
        pool,
        program,
        [
            CallTest("ok", "add", (1, 2), expected=3),
            CallTest("wrong", "add", (1, 2), expected=4),
            CallTest("str", "add", ("a", "b"), expected="ab"),
            CallTest("tuple_is_not_list", "pair", (1, 2), expected=[1, 2]),
            CallTest("tuple", "pair", (1, 2), expected=(1, 2)),
        ],
    )
    assert statuses(res) == ["pass", "wrong_answer", "pass", "wrong_answer", "pass"]
    assert res.verdicts[1].message == "expected 4, got 3"
    assert res.passed is False and res.status == "wrong_answer"
    assert res.first_failure().name == "wrong"


def test_call_pickled_expected_outputs(pool):
    """Ground truth is kept as pickle bytes (wire.Pickled). Equal bytes pass without decoding;
    equal values with other bytes (int vs float, shared vs copied strings) still pass through the
    full comparison; a wrong value is a wrong answer whose message shows the decoded expected."""
    program = (
        "def same(n):\n    return [str(i) for i in range(n)]\n"
        "def shared(n):\n    s = 'x' * 3\n    return [s] * n\n"
        "def as_float(n):\n    return float(n)\n"
        "def wrong(n):\n    return n + 1\n"
    )
    tests = [
        CallTest("same", "same", (3,), expected=Pickled.of(["0", "1", "2"])),
        CallTest("shared", "shared", (2,), expected=Pickled.of(["xxx", "xx" + "x"])),
        CallTest("as_float", "as_float", (2,), expected=Pickled.of(2)),
        CallTest("wrong", "wrong", (2,), expected=Pickled.of(2)),
    ]
    res = run_one(pool, program, tests)
    assert statuses(res) == ["pass", "pass", "pass", "wrong_answer"]
    assert res.verdicts[3].message == "expected 2, got 3"
    assert sandbox_types.test_to_dict(tests[0])["expected"] == ["0", "1", "2"]


def test_call_explicit_atol(pool):
    """f() = 1.005:  |1.005 - 1.0| = 0.005 <= 0.01 passes;  0.005 > 0.001 + 1e-7 fails."""
    res = run_one(
        pool,
        "def f():\n    return 1.005",
        [CallTest("loose", "f", (), expected=1.0, atol=0.01), CallTest("tight", "f", (), expected=1.0, atol=0.001)],
    )
    assert statuses(res) == ["pass", "wrong_answer"]


def test_call_float_default_atol_is_1e_6(pool):
    """Floats are never compared exactly (evalplus): atol 1e-6 when the test gives none.

    0.1 + 0.2 = 0.30000000000000004 vs 0.3          -> |d| = 5.6e-17 <= 1e-6  pass
    0.3 + 5e-7 vs 0.3                                -> |d| = 5e-7    <= 1e-6  pass
    0.3 + 1e-5 vs 0.3                                -> |d| = 1e-5    >  1e-6  wrong
    [0.1 + 0.2, 1.0] vs [0.3, 1.0]                   -> elementwise            pass
    3.0000001 vs int 3: not floats, so exact         ->                        wrong
    """
    program = "def f(x):\n    return x + 0.1 if isinstance(x, float) else [v + 0.1 for v in x]\ndef g():\n    return 3.0000001"
    res = run_one(
        pool,
        program,
        [
            CallTest("sum", "f", (0.2,), expected=0.3),
            CallTest("half_atol", "f", (0.2 + 5e-7,), expected=0.3),
            CallTest("too_far", "f", (0.2 + 1e-5,), expected=0.3),
            CallTest("list", "f", ([0.2, 0.9],), expected=[0.3, 1.0]),
            CallTest("int_expected_is_exact", "g", (), expected=3),
        ],
    )
    assert statuses(res) == ["pass", "pass", "wrong_answer", "pass", "wrong_answer"]


def test_call_without_expected_passes_and_returns_output(pool):
    """Ground-truth mode: NO_EXPECTED means 'just run it'."""
    res = run_one(pool, "def sq(x):\n    return x * x", [CallTest("gt", "sq", (7,))], return_outputs=True)
    assert statuses(res) == ["pass"] and res.outputs == [49]
    assert CallTest("gt", "sq", (7,)).expected is NO_EXPECTED


@pytest.mark.parametrize(
    "printed, status",
    [
        ("1 2\n3\n", "pass"),
        ("1 2   \n3", "pass"),  # trailing spaces on a line, no final newline
        ("1 2\n3\n\n\n", "pass"),  # trailing blank lines
        ("1 2\r\n3\r\n", "pass"),  # CRLF
        ("1  2\n3\n", "wrong_answer"),  # inner whitespace counts
        ("\n1 2\n3\n", "wrong_answer"),  # leading blank line counts
        ("1 2\n3\nx\n", "wrong_answer"),
        ("", "wrong_answer"),
    ],
)
def test_stdio_trailing_whitespace_rules(pool, printed, status):
    res = run_one(pool, f"import sys\nsys.stdout.write({printed!r})", [StdioTest("s", "", "1 2 \n3\n")])
    assert statuses(res) == [status]


def test_a_registered_oracle_refines_exact_match():
    """An oracle registered under a name judges the tests that name it; "final" ones decide alone.
    even(out) for out = 4: exact 4 != 5 but the oracle accepts, final or not."""
    register_oracle("test_even", lambda args, out, exp, atol: out % 2 == 0)
    register_oracle("test_even_final", lambda args, out, exp, atol: out % 2 == 0, final=True)
    assert judge_call(CallTest("t", "f", (), expected=5, oracle="test_even"), 4) == (True, "")
    assert judge_call(CallTest("t", "f", (), expected=5, oracle="test_even_final"), 3) == (False, "oracle test_even_final rejected 3")
    assert judge_call(CallTest("t", "f", (), expected=5), 4) == (False, "expected 5, got 4")


def test_an_unknown_oracle_is_an_error_not_a_verdict(pool):
    """A test naming an oracle nobody registered cannot be judged: judge_call raises, and a job
    with such a test raises before it runs (never a pass, never a silent wrong answer)."""
    test = CallTest("t", "f", (), expected=1, oracle="no_such_oracle")
    with pytest.raises(ValueError, match="unknown oracle 'no_such_oracle'"):
        judge_call(test, 1)
    with pytest.raises(ValueError, match="unknown oracle 'no_such_oracle'.*focalpo.problems.oracles"):
        run_one(pool, "def f():\n    return 1", [test])
    assert statuses(run_one(pool, "def f():\n    return 1", [CallTest("t", "f", (), expected=1)])) == ["pass"]
    assert CallTest("gt", "f", ()).expected is NO_EXPECTED
