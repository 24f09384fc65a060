"""Tests of focalpo.problems.mbpp_inputs: MBPP+ input deserialisation as evalplus 0.3.1 does it.

Run: .venv/bin/python -m pytest tests/problems/test_mbpp_inputs.py -q
"""

from __future__ import annotations

from focalpo.problems import deserialize_mbpp_input


def test_mbpp_deserialisation_cases():
    # Mbpp/115: lists -> sets, and an empty list -> {} (evalplus 0.3.1 quirk: a dict).
    assert deserialize_mbpp_input("Mbpp/115", [[[1, 2], [], [3]]]) == ([{1, 2}, {}, {3}],)
    assert type(deserialize_mbpp_input("Mbpp/115", [[[]]])[0][0]) is dict
    assert deserialize_mbpp_input("Mbpp/124", ["1e-100", "(-0-1j)"]) == (1e-100, -1j)
    assert deserialize_mbpp_input("Mbpp/580", [[1, [2, [3]]], 4]) == ((1, (2, (3,))), 4)
    assert deserialize_mbpp_input("Mbpp/259", [[[1, 2]], [[3]]]) == (((1, 2),), ((3,),))
    assert deserialize_mbpp_input("Mbpp/278", [[1, [2, 3], 4]]) == ((1, (2, 3), 4),)
    assert deserialize_mbpp_input("Mbpp/722", [{"a": [1, 2]}, 5, 6]) == ({"a": (1, 2)}, 5, 6)
    assert deserialize_mbpp_input("Mbpp/75", [[[1, 2]], 3, 99]) == ([(1, 2)], 3)  # drops extras, as evalplus
    assert deserialize_mbpp_input("Mbpp/3", [[1, 2], 3]) == ([1, 2], 3)  # not listed: unchanged
