"""Tests of focalpo.report.weightview: which schemes weigh a file's pairs identically, said per scheme.

Run: .venv/bin/python -m pytest -q tests/report/test_weightview.py
"""

from __future__ import annotations

from focalpo.report.weightview import Tokens, identical_schemes, scheme_lines

W1 = {"chosen": [1.0, 1.0], "rejected": [1.0, 1.0]}
W2 = {"chosen": [0.0, 1.0], "rejected": [1.0, 0.0]}


def _tokens(weights: dict, nll: dict) -> Tokens:
    return Tokens(pieces=[{}, {}], weights=weights, nll=nll)


def test_identical_schemes_are_found_by_their_weights_not_their_names():
    t = _tokens({"dpo": [W1, W1], "rpo": [W1, W1], "target": [W2, W1], "focused": [None, None]},
                {"dpo": False, "rpo": True, "target": False, "focused": False})
    assert identical_schemes(t) == [["dpo", "rpo"]]
    t.weights["target"] = [W1, W1]  # on pairs where target's spans cover everything, it is dpo too
    assert identical_schemes(t) == [["dpo", "rpo", "target"]]


def test_scheme_lines_say_what_differs_when_weights_do_not():
    t = _tokens({"dpo": [W1, W1], "rpo": [W1, W1]}, {"dpo": False, "rpo": True})
    lines = scheme_lines(t, {}, 2)
    assert any(line.startswith("`rpo`:") and "NLL" in line for line in lines)
    assert any("`dpo`" in line and "`rpo`" in line and "identical" in line.lower() for line in lines), lines
