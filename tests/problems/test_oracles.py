"""Tests of focalpo.problems.oracles: the benchmarks' named oracles (evalplus 0.3.1 special cases),
registered with the sandbox's judge and applied to real job outputs.

Run: .venv/bin/python -m pytest tests/problems/test_oracles.py -q
"""

from __future__ import annotations

import pytest

from focalpo.problems.oracles import ORACLES, check_oracle_name
from focalpo.sandbox import CallTest, ExecPool, ExecResult, Job, Limits
from focalpo.sandbox.judge import registered_oracles

FAST = Limits(test_time=1.0, grace=0.3, load_time=1.0, memory=1 << 30)


@pytest.fixture(scope="module")
def pool():
    with ExecPool(workers=1, limits=FAST) as p:
        yield p


def run_one(pool: ExecPool, program: str, tests) -> ExecResult:
    return pool.map([Job(program, tests)])[0]


def test_call_named_oracles(pool):
    """poly_root: xs = [-6, 11, -6, 1] = (x-1)(x-2)(x-3); poly(2.0) = 0, poly(2.5) = -0.375.
    digit_distance(123, 256) = |1-2| + |2-5| + |3-6| = 7."""
    program = "\n".join(
        [
            "def root(xs):\n    return 2.0",
            "def not_root(xs):\n    return 2.5",
            "def perm():\n    return [3, 1, 2]",
            "def some(x):\n    return x",
            "def gen():\n    return (i for i in range(2))",
            "def const(c):\n    return c",
            "def dist(a, b):\n    return 7",
        ]
    )
    cases = [  # (test, passes)
        (CallTest("root_ok", "root", ([-6, 11, -6, 1],), expected=1.0, atol=1e-6, oracle="poly_root"), True),
        (CallTest("root_bad", "not_root", ([-6, 11, -6, 1],), expected=2.5, atol=1e-6, oracle="poly_root"), False),
        (CallTest("set_eq_ok", "perm", (), expected=[1, 2, 3], oracle="set_eq"), True),
        (CallTest("set_eq_bad", "perm", (), expected=[1, 2], oracle="set_eq"), False),
        (CallTest("not_none_ok", "some", ("x",), expected=True, oracle="not_none"), True),
        (CallTest("not_none_none", "some", (None,), expected=True, oracle="not_none"), False),
        (CallTest("not_none_opaque", "gen", (), expected=True, oracle="not_none"), True),
        (CallTest("or_zero_zero", "const", (0,), expected=5, oracle="or_zero"), True),
        (CallTest("or_zero_bad", "const", (4,), expected=5, oracle="or_zero"), False),
        (CallTest("always_true", "const", ("junk",), expected=5, oracle="always_true"), True),
        (CallTest("digit_distance", "dist", (123, 256), expected=0, oracle="digit_distance"), True),
        (CallTest("no_oracle_same_set", "perm", (), expected=[1, 2, 3]), False),
    ]
    res = run_one(pool, program, [t for t, _ in cases])
    got = {v.name: v.status for v in res.verdicts}
    assert got == {t.name: ("pass" if ok else "wrong_answer") for t, ok in cases}
    assert res.verdicts[1].message.startswith("oracle poly_root rejected")


def test_every_oracle_is_registered_with_the_judge_and_names_are_checked():
    assert ORACLES <= registered_oracles()
    check_oracle_name("poly_root")
    check_oracle_name(None)
    with pytest.raises(ValueError, match="unknown oracle 'nope'"):
        check_oracle_name("nope")
