"""Trusted judging of test reports, run in the parent process, never in the sandboxed job.

`judge_test(test, code, message, payload, want_value)` turns one reported test into a status:
call tests by `judge_call` (exact equality, else float closeness with the test's `atol`; evalplus
semantics: floats get atol 1e-6 when none is given, `rtol` 1e-7 as in `np.allclose`), stdio tests
by comparing stdout as `normalise_stdout` leaves it. `job_side(test)` is what the job may know of
a test (never its expected output) and `traceback_source` where a failure's frames come from.

Benchmark-specific checks are *named oracles* (`CallTest.oracle`). Their logic is not here: the
problem layer registers it (`register_oracle`, done by `focalpo.problems.oracles` on import), so
the executor has no benchmark special case. A test naming an oracle nobody registered raises.

The `output` reaching these functions was decoded by `focalpo.sandbox.wire`: it is made only of
builtin values (and `Opaque` stand-ins for objects that could not cross the boundary), so `==` here
cannot run code written by the program under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from focalpo.sandbox.asserts import rewrite_asserts, rewrite_unittest
from focalpo.sandbox.types import NO_EXPECTED, AssertTest, CallTest, Job, Status, StdioTest, TestCase, UnittestTest
from focalpo.sandbox.wire import Opaque, Pickled, safe_loads, same_bytes

# An oracle refines "exact match": (args, output, expected, atol) -> bool.
Oracle = Callable[[tuple, Any, Any, float], bool]

CODES = {"exception": Status.EXCEPTION, "timeout": Status.TIMEOUT, "memory": Status.MEMORY, "fail": Status.WRONG_ANSWER}


@dataclass(frozen=True)
class NamedOracle:
    check: Oracle
    final: bool = False  # decides alone: no exact/atol step afterwards
    opaque: bool = False  # may judge an output that is not a plain value (an `Opaque` stand-in)


_ORACLES: dict[str, NamedOracle] = {}


def register_oracle(name: str, check: Oracle, *, final: bool = False, opaque: bool = False) -> None:
    """Make `CallTest(oracle=name)` judged by `check` in this process (see `judge_call`)."""
    _ORACLES[name] = NamedOracle(check, final, opaque)


def registered_oracles() -> frozenset[str]:
    return frozenset(_ORACLES)


def _oracle(test: CallTest) -> NamedOracle:
    try:
        return _ORACLES[test.oracle]
    except KeyError:
        raise ValueError(
            f"test {test.name!r}: unknown oracle {test.oracle!r}; registered: {sorted(_ORACLES)} "
            "(the problem layer registers its oracles: import focalpo.problems.oracles)"
        ) from None


def judge_call(test: CallTest, output: Any) -> tuple[bool, str]:
    """Decide a call test in the parent. Returns (passed, reason-if-not)."""
    if test.expected is NO_EXPECTED:
        raise ValueError(f"test {test.name!r} has no expected output to judge against")
    oracle = None if test.oracle is None else _oracle(test)
    if isinstance(output, Opaque) and (oracle is None or not oracle.opaque):
        return False, f"returned a {output.type_name}, which is not a plain value"
    args, exp, atol = test.args, test.expected, test.atol
    if isinstance(exp, Pickled):
        exp = exp.value
    try:
        if oracle is not None and oracle.final:
            ok = bool(oracle.check(args, output, exp, atol))
            return ok, "" if ok else f"oracle {test.oracle} rejected {_short(output)}"
        if oracle is not None:
            exact = bool(oracle.check(args, output, exp, atol))
        else:
            exact = bool(output == exp)
        if atol == 0 and _is_floats(exp):
            atol = 1e-6  # evalplus: floats are never compared exactly
        if not exact and atol != 0:
            ok = type(output) is type(exp) and _allclose(output, exp, atol)
        else:
            ok = exact
    except Exception as e:  # e.g. set() of unhashable output, RecursionError on a cyclic list
        return False, f"output could not be compared: {type(e).__name__}: {e}"
    return ok, "" if ok else f"expected {_short(exp)}, got {_short(output)}"


def _is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def _allclose(out: Any, exp: Any, atol: float, rtol: float = 1e-7) -> bool:
    """Pure-Python `np.allclose` for scalars and (nested) sequences of numbers."""
    if isinstance(exp, (list, tuple)):
        if not isinstance(out, (list, tuple)) or len(out) != len(exp):
            return False
        return all(_allclose(o, e, atol, rtol) for o, e in zip(out, exp))
    numbers = (int, float)  # bool is an int, as in numpy
    if not isinstance(out, numbers) or not isinstance(exp, numbers):
        return False
    if math.isinf(out) or math.isinf(exp):
        return out == exp
    return abs(out - exp) <= atol + rtol * abs(exp)  # NaN compares False, as np.allclose


def _short(x: Any, limit: int = 120) -> str:
    try:
        s = repr(x)
    except Exception:  # noqa: BLE001 - a pathological (cyclic, huge) value
        s = f"<{type(x).__name__}>"
    return s if len(s) <= limit else s[: limit - 3] + "..."


def normalise_stdout(text: str) -> str:
    """Trailing whitespace of each line and trailing blank lines do not count (`StdioTest`)."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def judge_test(test: TestCase, code: str, message: str, payload: Any, want_value: bool) -> tuple[str, str, Any]:
    """Status, message and (for call tests, when needed) decoded output of one reported test.

    Trusted code. A call test's output arrives as pickle bytes: equal to the expected output's
    bytes means a pass without decoding anything; otherwise it is decoded by `safe_loads` and judged.
    """
    if code != "ok":
        return CODES.get(code, Status.CRASHED), message, None
    if isinstance(test, CallTest):
        if not isinstance(payload, (bytes, bytearray)):
            return Status.CRASHED, "malformed call report", None
        exp = test.expected
        if isinstance(exp, Pickled) and test.oracle is None and not want_value and same_bytes(payload, exp.data):
            return Status.PASS, "", None  # not decoded: nobody asked for the value
        try:
            value = safe_loads(payload)
        except Exception:  # noqa: BLE001 - forged or corrupt bytes
            return Status.CRASHED, "the job returned an undecodable value", None
        if exp is NO_EXPECTED:
            return Status.PASS, "", value
        ok, why = judge_call(test, value)
        return (Status.PASS, "", value) if ok else (Status.WRONG_ANSWER, why, value)
    if isinstance(test, StdioTest):
        if not (isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[0], str)):
            return Status.CRASHED, "malformed stdout report", None
        text, truncated = payload
        if truncated:
            return Status.WRONG_ANSWER, "stdout exceeded the output limit", payload
        if normalise_stdout(text) == normalise_stdout(test.expected_stdout):
            return Status.PASS, "", payload
        return Status.WRONG_ANSWER, f"stdout differs (got {len(text)} chars)", payload
    return Status.PASS, "", payload


def job_side(test: TestCase) -> tuple:
    """What the job may know of a test: never the expected output. A call test naming an oracle
    that is not registered raises here, before anything runs: its output could not be judged."""
    if isinstance(test, CallTest):
        if test.oracle is not None and test.oracle not in _ORACLES:
            _oracle(test)  # raises
        return ("call", test.entry_point, test.args)
    if isinstance(test, AssertTest):
        return ("assert", rewrite_asserts(test.setup) if test.setup else "", rewrite_asserts(test.code))
    if isinstance(test, StdioTest):
        return ("stdio", test.stdin)
    if isinstance(test, UnittestTest):
        return ("unittest", rewrite_unittest(test.module), test.method, test.namespace)
    raise TypeError(f"not a test case: {type(test).__name__}")


def traceback_source(job: Job, test: TestCase | None) -> Callable[[str, str], str]:
    """Where a traceback frame's line comes from: the caller's own texts (not the rewritten
    asserts the job ran; rewriting keeps line numbers)."""

    def source(kind: str, name: str) -> str:
        if kind == "program":
            return job.program
        if kind == "file":
            return (job.files or {}).get(name, "")
        if isinstance(test, AssertTest):
            return {"test.py": test.code, "test_setup.py": test.setup}.get(name, "")
        return test.module if isinstance(test, UnittestTest) and name == "test_module.py" else ""

    return source
