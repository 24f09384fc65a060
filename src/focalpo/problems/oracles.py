"""Named oracles: the benchmarks' special cases of judging a call test's output.

HumanEval+ and MBPP+ accept some outputs that are not equal to the reference output (any root of
HumanEval/32's polynomial, a list in any order, ...): evalplus 0.3.1's `_special_oracle`. The
problem layer attaches their names to tests (`CallTest.oracle`: `mbpp_inputs.MBPP_ORACLES`,
`HUMANEVAL_ORACLES`) and, on import of this module, registers their checks with the sandbox's
judge (`focalpo.sandbox.judge.register_oracle`), so the executor itself stays generic. Trusted
code, run in the parent process that judges; `focalpo.problems` imports it, so every process that
loads problems judges their oracles.

    poly_root(xs, x)       |Σ_i xs[i]·x^i| <= atol (the output x is a root; decides alone)
    set_eq                 set(output) == set(expected)
    not_none               expected is the reference output's `is not None` (GROUND_TRUTH_TRANSFORMS)
    always_true, or_zero, surface_area, digit_distance: see EXACT_ORACLES
"""

from __future__ import annotations

import math
from typing import Any, Callable

from focalpo.sandbox.judge import Oracle, register_oracle


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

# Oracles that judge outputs which did not cross as plain values (`Opaque`): `not_none` only asks
# whether there was one (a `re.Match` object, say).
OPAQUE_ORACLES = frozenset({"not_none"})

ORACLES = frozenset(EXACT_ORACLES) | frozenset(FINAL_ORACLES)


def check_oracle_name(name: str | None) -> None:
    if name is not None and name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; known: {sorted(ORACLES)}")


for _name, _check in EXACT_ORACLES.items():
    register_oracle(_name, _check, opaque=_name in OPAQUE_ORACLES)
for _name, _check in FINAL_ORACLES.items():
    register_oracle(_name, _check, final=True, opaque=_name in OPAQUE_ORACLES)
