"""Trusted judging of call-test outputs, run in the parent process, never in the sandboxed job.

`judge_call(test, output)` decides a `CallTest`: exact equality, else float closeness with the
test's `atol` (evalplus semantics: floats get atol 1e-6 when none is given; `rtol` 1e-7 as in
`np.allclose`). Benchmark-specific checks are *named oracles* that the problem layer attaches to a
test (`CallTest.oracle`); their logic lives here, in trusted code, so the executor stays generic.

The `output` reaching these functions was decoded by `focalpo.sandbox.wire`: it is made only of
builtin values (and `Opaque` stand-ins for objects that could not cross the boundary), so `==` here
cannot run code written by the program under test.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from focalpo.sandbox.types import NO_EXPECTED, CallTest
from focalpo.sandbox.wire import Opaque, Pickled

# An oracle refines "exact match": (args, output, expected, atol) -> bool.
Oracle = Callable[[tuple, Any, Any, float], bool]


def _poly(xs: list, x: float) -> float:
    return sum(c * math.pow(x, i) for i, c in enumerate(xs))


def _surface_area(base_edge, height):
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance(num1, num2):
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width)))


def _set_eq(args, out, exp, atol):
    return set(out) == set(exp)


def _not_none(args, out, exp, atol):
    # `expected` is the reference output's `is not None` (see GROUND_TRUTH_TRANSFORMS).
    if isinstance(out, bool):
        return out == exp
    return exp == (out is not None)


EXACT_ORACLES: dict[str, Oracle] = {
    # HumanEval+/MBPP+ special cases, same semantics as evalplus 0.3.1's `_special_oracle`.
    "set_eq": _set_eq,
    "not_none": _not_none,
    "always_true": lambda args, out, exp, atol: True,
    "or_zero": lambda args, out, exp, atol: out == exp or out == 0,
    "surface_area": lambda args, out, exp, atol: out == exp or abs(out - _surface_area(*args)) <= atol,
    "digit_distance": lambda args, out, exp, atol: out == exp or out == _digit_distance(*args),
}

# Oracles that decide alone (no exact/atol step afterwards).
FINAL_ORACLES: dict[str, Oracle] = {
    # HumanEval/32 find_zero: any root is fine.
    "poly_root": lambda args, out, exp, atol: abs(_poly(*args, out)) <= atol,
}

# Applied to the reference solution's output when computing expected outputs.
GROUND_TRUTH_TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "not_none": lambda out: out is not None,
}

ORACLES = frozenset(EXACT_ORACLES) | frozenset(FINAL_ORACLES)


def check_oracle_name(name: str | None) -> None:
    if name is not None and name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; known: {sorted(ORACLES)}")


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


def judge_call(test: CallTest, output: Any) -> tuple[bool, str]:
    """Decide a call test in the parent. Returns (passed, reason-if-not)."""
    if test.expected is NO_EXPECTED:
        raise ValueError(f"test {test.name!r} has no expected output to judge against")
    if isinstance(output, Opaque) and test.oracle != "not_none":
        return False, f"returned a {output.type_name}, which is not a plain value"
    args, exp, atol = test.args, test.expected, test.atol
    if isinstance(exp, Pickled):
        exp = exp.value
    try:
        if test.oracle in FINAL_ORACLES:
            ok = bool(FINAL_ORACLES[test.oracle](args, output, exp, atol))
            return ok, "" if ok else f"oracle {test.oracle} rejected {_short(output)}"
        if test.oracle is not None:
            exact = bool(EXACT_ORACLES[test.oracle](args, output, exp, atol))
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


def _short(x: Any, limit: int = 120) -> str:
    try:
        s = repr(x)
    except Exception:  # noqa: BLE001 - a pathological (cyclic, huge) value
        s = f"<{type(x).__name__}>"
    return s if len(s) <= limit else s[: limit - 3] + "..."
