"""MBPP+ specifics reproduced from evalplus 0.3.1: input deserialisation and special oracles.

MBPP+ stores test inputs as JSON, which has no tuples, sets or complex numbers; evalplus 0.3.1
(`evalplus/data/mbpp.py: mbpp_deserialize_inputs`) rebuilds them for a fixed list of task ids.
`deserialize_mbpp_input` applies the same conversion to one input (an argument list), including
evalplus's quirks: some conversions keep only the first arguments, and Mbpp/115 turns an empty
list into `{}` (a dict). Special oracles are chosen by entry point, as in
`evalplus/eval/__init__.py` (names of `focalpo.problems.oracles`).
"""

from __future__ import annotations

from typing import Any, Callable


def _args_to_tuples(inp: list) -> list:
    return [tuple(arg) for arg in inp]


def _args_to_lists_of_tuples(inp: list) -> list:
    return [[tuple(x) for x in arg] for arg in inp]


def _args_to_tuples_of_tuples(inp: list) -> list:
    return [tuple(tuple(x) for x in arg) for arg in inp]


def _all_lists_to_tuples(x: Any) -> Any:
    return tuple(_all_lists_to_tuples(i) for i in x) if isinstance(x, list) else x


def _sets_or_empty_dict(inp: list) -> list:
    return [[set(i) if isinstance(i, list) and len(i) else {} for i in inp[0]]]


def _first_inner_lists_to_tuple(inp: list) -> list:
    return [tuple(tuple(i) if isinstance(i, list) else i for i in inp[0])]


_GROUPS: list[tuple[tuple[int, ...], Callable[[list], Any]]] = [
    ((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
      740, 744, 809), _args_to_tuples),
    ((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780), _args_to_lists_of_tuples),
    ((75, 413, 444, 753), lambda inp: [[tuple(x) for x in inp[0]], inp[1]]),
    ((106, 750), lambda inp: [inp[0], tuple(inp[1])]),
    ((115,), _sets_or_empty_dict),
    ((124,), lambda inp: (float(inp[0]), complex(inp[1]))),
    ((250, 405, 446, 617, 720, 763, 808), lambda inp: [tuple(inp[0]), inp[1]]),
    ((259, 401, 445), _args_to_tuples_of_tuples),
    ((278,), _first_inner_lists_to_tuple),
    ((307,), lambda inp: [tuple(inp[0]), inp[1], inp[2]]),
    ((722,), lambda inp: [{k: tuple(v) for k, v in inp[0].items()}] + inp[1:]),
    ((252,), lambda inp: [complex(inp[0])]),
    ((580, 615, 791), _all_lists_to_tuples),
]
MBPP_DESERIALIZERS: dict[int, Callable[[list], Any]] = {t: f for ids, f in _GROUPS for t in ids}


def mbpp_number(task_id: str) -> int | None:
    """12 for "Mbpp/12"; None when the id has no number after the last slash."""
    tail = task_id.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def deserialize_mbpp_input(task_id: str, inp: list) -> tuple:
    """The argument tuple of one MBPP+ input, as evalplus 0.3.1 would call the function."""
    convert = MBPP_DESERIALIZERS.get(mbpp_number(task_id))
    return tuple(convert(inp) if convert else inp)


# Entry point -> oracle name (focalpo.problems.oracles), evalplus 0.3.1 semantics.
MBPP_ORACLES: dict[str, str] = {
    **dict.fromkeys(
        ["similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
         "larg_nnum", "intersection_array", "find_dissimilar", "Diff"], "set_eq"),
    **dict.fromkeys(["check_str", "text_match_three", "text_starta_endb"], "not_none"),
    "are_equivalent": "always_true",  # Mbpp/164
    "sum_div": "or_zero",  # Mbpp/295
    "surface_Area": "surface_area",  # Mbpp/581
    "digit_distance_nums": "digit_distance",  # Mbpp/558
}

HUMANEVAL_ORACLES: dict[str, str] = {"find_zero": "poly_root"}  # HumanEval/32
