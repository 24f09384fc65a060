"""Tests of focalpo.sandbox.types: the test-case data types (constructor, copies, dict round trip).

Run: .venv/bin/python -m pytest tests/sandbox/test_types.py -q
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from focalpo.sandbox import NO_EXPECTED, AssertTest, CallTest, StdioTest, UnittestTest
from focalpo.sandbox import types as sandbox_types


def test_with_expected_is_an_equal_copy():
    t = CallTest("t", "f", (1, [2]), atol=1e-3, oracle="set_eq")
    filled = t.with_expected([1], 2.0)
    assert filled == CallTest("t", "f", (1, [2]), [1], 1e-3, "set_eq", 2.0) and t.expected is NO_EXPECTED
    with pytest.raises(dataclasses.FrozenInstanceError):
        filled.expected = 2  # still frozen


def test_call_test_constructor_matches_its_fields():
    """CallTest writes its own __init__ (for speed): it must take exactly the dataclass's fields,
    in order, with their defaults, and build what the generated one would."""
    params = list(inspect.signature(CallTest.__init__).parameters.values())[1:]
    fields = dataclasses.fields(CallTest)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields]
    t = CallTest("t", "f", (1,), time_limit=3.0)
    assert (t.expected, t.atol, t.oracle, t.time_limit) == (NO_EXPECTED, 0.0, None, 3.0)
    assert dataclasses.replace(t, atol=0.5) == CallTest("t", "f", (1,), NO_EXPECTED, 0.5, None, 3.0)
    assert pickle.loads(pickle.dumps(t)) == t and hash(t) == hash(CallTest("t", "f", (1,), time_limit=3.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.args = ()
    with pytest.raises(TypeError):
        CallTest("t", "f")  # args is required


def test_test_case_dict_round_trip():
    tests = [
        CallTest("c", "f", (1, [2]), expected=3, atol=0.1, oracle="set_eq", time_limit=2.0),
        CallTest("g", "f", ()),
        AssertTest("a", "assert f() == 1", setup="x = 1"),
        StdioTest("s", "1\n", "2\n"),
        UnittestTest("u", "import unittest", "T.test_x"),
    ]
    for t in tests:
        assert sandbox_types.test_from_dict(sandbox_types.test_to_dict(t)) == t
    with pytest.raises(ValueError, match="field 'kind'"):
        sandbox_types.test_from_dict({"kind": "nope"})
    with pytest.raises(ValueError, match="unknown field"):
        sandbox_types.test_from_dict({"kind": "stdio", "name": "s", "stdin": "", "expected_stdout": "", "extra": 1})
