"""Synthetic Python tasks for the toy world: a small grammar of composed operations, each task with a
deterministic English instruction, a short reference solution and call tests computed from it.

    problems = generate_tasks(200, seed=0, difficulty=(1, 3), split="train")   # list[Problem]
    write_tasks("toy_train.jsonl", problems)                                    # focalpo JSONL

    python -m focalpo.toyworld.tasks out.jsonl --n 200 --seed 0 --split heldout --min 1 --max 3

Grammar. A task is a *kind* (its input) and a composition of 1..5 operations, applied in order:
- kinds: "int" -> `solve(x)`, "ints" -> `solve(xs)` (list of ints), "strs" -> `solve(words)`
  (list of strings). The entry point is always `solve`: a fixed name per input type is easier for
  a tiny model than descriptive names.
- filters (lists): even, odd, positive, gt c, lt c (ints); starts c, longer c (strings);
- maps (each element, or the int itself): add c, sub c, mul c, square, negate, abs,
  cond c a b (`a if x > c else b`, a and b simple int maps or x itself); upper, lower, reverse,
  length (strings; length turns the words into ints);
- folds (lists, last operation only): sum, product, max, min (0 when empty), count (after a
  filter), join (strings).
Difficulty = number of operations (a fold counts as one). An operation name appears at most once.

Reference style: one line per operation, rebinding the variable, then `return`:

    def solve(xs):
        xs = [x for x in xs if x % 2 == 0]
        xs = [x * 3 for x in xs]
        return sum(xs)

Split rule. A task's canonical key is its kind and operations with their constants
("ints|even|mul:3|sum"). The key's SHA-256 decides the split (first 8 hex digits mod 100 below
HELDOUT_PERCENT -> "heldout"), so a composition is in the same split whatever the seed or n, and a
held-out task never coincides with a training task. Keys are unique within one call.

Tests: 8 `CallTest`s per task (edge cases such as [] / 0 / negatives, then seeded random inputs,
args = (value,)), expected values from running the reference in-process (our own trusted code). A
composition is redrawn when the reference raises or when every test expects the same output.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
from pathlib import Path

from focalpo.problems.jsonl import dump_jsonl
from focalpo.problems.types import Problem
from focalpo.sandbox.types import CallTest

ENTRY_POINT = "solve"
HELDOUT_PERCENT = 20
MAX_DIFFICULTY = 5
N_TESTS = 8
SPLITS = ("train", "heldout")
KINDS = {  # kind: (parameter name, how the instruction calls it)
    "int": ("x", "an integer x"),
    "ints": ("xs", "a list of integers xs"),
    "strs": ("words", "a list of strings words"),
}
ELEMENT = {"xs": "x", "words": "w"}  # list variable -> element variable
LIST_OF = {"int": "xs", "str": "words"}  # element type -> list variable

# name: (element type, condition on {v}, phrase)
FILTERS = {
    "even": ("int", "{v} % 2 == 0", "keeps the even numbers"),
    "odd": ("int", "{v} % 2 == 1", "keeps the odd numbers"),
    "positive": ("int", "{v} > 0", "keeps the positive numbers"),
    "gt": ("int", "{v} > {c}", "keeps the numbers greater than {c}"),
    "lt": ("int", "{v} < {c}", "keeps the numbers less than {c}"),
    "starts": ("str", "{v}.startswith({c!r})", "keeps the words starting with {c!r}"),
    "longer": ("str", "len({v}) > {c}", "keeps the words longer than {c} characters"),
}
# name: (input type, output type, expression of {v}, phrase; {each} is "each" or "it")
MAPS = {
    "add": ("int", "int", "{v} + {c}", "adds {c} to {each}"),
    "sub": ("int", "int", "{v} - {c}", "subtracts {c} from {each}"),
    "mul": ("int", "int", "{v} * {c}", "multiplies {each} by {c}"),
    "square": ("int", "int", "{v} * {v}", "squares {each}"),
    "negate": ("int", "int", "-{v}", "negates {each}"),
    "abs": ("int", "int", "abs({v})", "takes the absolute value of {each}"),
    "cond": ("int", "int", "{a} if {v} > {c} else {b}", "replaces {each} by {a} if {v} > {c}, else by {b}"),
    "upper": ("str", "str", "{v}.upper()", "converts {each} to upper case"),
    "lower": ("str", "str", "{v}.lower()", "converts {each} to lower case"),
    "reverse": ("str", "str", "{v}[::-1]", "reverses {each}"),
    "length": ("str", "int", "len({v})", "replaces {each} by its length"),
}
# name: (input element type, None = any; expression of the list {xs}; phrase)
FOLDS = {
    "sum": ("int", "sum({xs})", "returns their sum"),
    "product": ("int", "math.prod({xs})", "returns their product"),
    "max": ("int", "max({xs}, default=0)", "returns the largest of them (0 if there are none)"),
    "min": ("int", "min({xs}, default=0)", "returns the smallest of them (0 if there are none)"),
    "count": (None, "len({xs})", "returns how many there are"),
    "join": ("str", '" ".join({xs})', "returns them joined with single spaces"),
}
CONSTANTS = {"add": range(1, 6), "sub": range(1, 6), "mul": range(2, 5), "gt": range(-2, 5), "lt": range(-2, 5),
             "cond": range(-2, 5), "starts": "abcAB", "longer": range(1, 4)}
COND_BRANCHES = ("add", "sub", "mul", "square", "negate", "abs", "id")
LETTERS = "abcdeABCDE"


def canonical_key(kind: str, ops: list[tuple]) -> str:
    """The composition's identity, e.g. "ints|even|mul:3|sum" or "int|cond:2:add:1:id"."""
    return "|".join([kind] + [":".join(str(p) for p in _flat(op)) for op in ops])


def _flat(op: tuple) -> list:
    return [p for part in op for p in (_flat(part) if isinstance(part, tuple) else [part]) if p is not None]


def split_of(key: str) -> str:
    """"heldout" for HELDOUT_PERCENT % of canonical keys (by hash), "train" for the rest."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "train"


def draw_composition(rng: random.Random, kind: str, n_ops: int) -> list[tuple]:
    """`n_ops` operations valid for `kind`: (name, const or None), or ("cond", c, then, else)."""
    elem, ops, used = ("str" if kind == "strs" else "int"), [], set()
    for i in range(n_ops):
        fold_ok = kind != "int" and i == n_ops - 1
        # count ignores every map, so it only follows a filter
        folds = [f for f, (t, _, _) in FOLDS.items() if t in (None, elem) and (f != "count" or used & set(FILTERS))]
        if fold_ok and folds and rng.random() < 0.5:
            ops.append((rng.choice(folds), None))
            break
        names = [m for m, spec in MAPS.items() if spec[0] == elem]
        if kind != "int":
            names += [f for f, spec in FILTERS.items() if spec[0] == elem]
        name = rng.choice([m for m in names if _allowed(m, used)])
        used.add(name)
        ops.append(_with_constants(rng, name))
        elem = MAPS[name][1] if name in MAPS else elem
    return ops


def _allowed(name: str, used: set) -> bool:
    """Each operation at most once, and never both upper and lower (the first would be dead code)."""
    return name not in used and not (name in ("upper", "lower") and used & {"upper", "lower"})


def _with_constants(rng: random.Random, name: str) -> tuple:
    c = rng.choice(CONSTANTS[name]) if name in CONSTANTS else None
    if name != "cond":
        return (name, c)
    a = rng.choice(COND_BRANCHES[:-1])  # the "then" branch changes x; "else" may keep it
    b = rng.choice([m for m in COND_BRANCHES if m != a])
    return ("cond", c, _with_constants(rng, a), _with_constants(rng, b))


def _expr(op: tuple, v: str) -> str:
    """The Python expression of a filter's condition or a map's result, on variable `v`."""
    name, c = op[0], op[1]
    if name == "id":
        return v
    if name in FILTERS:
        return FILTERS[name][1].format(v=v, c=c)
    if name == "cond":
        return MAPS["cond"][2].format(v=v, c=c, a=_expr(op[2], v), b=_expr(op[3], v))
    return MAPS[name][2].format(v=v, c=c)


def render(kind: str, ops: list[tuple]) -> tuple[str, str]:
    """(instruction, reference source) of a composition."""
    var = KINDS[kind][0]
    lines, phrases = [], [f"takes {KINDS[kind][1]}"]
    each = "it" if kind == "int" else "each"
    for op in ops:
        name, elem = op[0], ELEMENT.get(var, var)
        if name in FOLDS:
            lines.append("return " + FOLDS[name][1].format(xs=var))
            phrases.append(FOLDS[name][2])
        elif name in FILTERS:
            lines.append(f"{var} = [{elem} for {elem} in {var} if {_expr(op, elem)}]")
            phrases.append(FILTERS[name][2].format(c=op[1]))
        elif kind == "int":
            lines.append(f"{var} = {_expr(op, var)}")
            phrases.append(_map_phrase(op, var, each))
        else:
            out = LIST_OF[MAPS[name][1]]
            lines.append(f"{out} = [{_expr(op, elem)} for {elem} in {var}]")
            phrases.append(_map_phrase(op, elem, each))
            var = out
    if ops[-1][0] not in FOLDS:
        lines.append(f"return {var}")
        phrases.append("returns the result" if kind == "int" else "returns the resulting list")
    header = ["import math", ""] if ops[-1][0] == "product" else []
    source = "\n".join(header + [f"def {ENTRY_POINT}({KINDS[kind][0]}):"] + ["    " + s for s in lines]) + "\n"
    said = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"Write a function `{ENTRY_POINT}({KINDS[kind][0]})` that {said}.", source


def _map_phrase(op: tuple, v: str, each: str) -> str:
    if op[0] == "cond":
        each = v if each == "it" else f"each number {v}"
        return MAPS["cond"][3].format(each=each, v=v, c=op[1], a=_expr(op[2], v), b=_expr(op[3], v))
    return MAPS[op[0]][3].format(each=each, c=op[1])


def draw_inputs(rng: random.Random, kind: str, n: int = N_TESTS) -> list:
    """`n` distinct inputs: fixed edge cases first, then seeded random values."""
    edges = {"int": [0, -3], "ints": [[], [0, -2, 7]], "strs": [[], ["", "Ab"]]}[kind]
    out: list = []
    for value in edges + [_random_input(rng, kind) for _ in range(4 * n)]:
        if value not in out:
            out.append(value)
    return out[:n]


def _random_input(rng: random.Random, kind: str):
    if kind == "int":
        return rng.randint(-20, 20)
    if kind == "ints":
        return [rng.randint(-9, 9) for _ in range(rng.randint(1, 6))]
    return ["".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 5))]


def run_reference(source: str, inputs: list) -> list | None:
    """The reference's output on each input (in-process: trusted generated code); None if it raises."""
    namespace: dict = {}
    exec(compile(source, "<toy reference>", "exec"), namespace)
    try:
        return [namespace[ENTRY_POINT](copy.deepcopy(value)) for value in inputs]
    except Exception:  # noqa: BLE001 - a reference that raises is redrawn, whatever the error
        return None


def make_task(rng: random.Random, task_id: str, kind: str, ops: list[tuple]) -> Problem | None:
    """The Problem of a composition, or None when its reference raises or its tests do not discriminate."""
    instruction, source = render(kind, ops)
    inputs = draw_inputs(rng, kind)
    outputs = run_reference(source, inputs)
    if outputs is None or len({json.dumps(o) for o in outputs}) < 2:
        return None
    tests = [CallTest(f"t{i}", ENTRY_POINT, (x,), y) for i, (x, y) in enumerate(zip(inputs, outputs))]
    key = canonical_key(kind, ops)
    meta = {"kind": kind, "difficulty": len(ops), "ops": key.split("|")[1:], "key": key, "split": split_of(key)}
    return Problem(task_id=task_id, prompt=instruction, entry_point=ENTRY_POINT, canonical_solution=source,
                   tests={"base": tests}, instruct_prompt=instruction, meta=meta, code_prefix="")


def generate_tasks(
    n: int, *, seed: int, difficulty: int | tuple[int, int] = (1, 3), split: str = "train"
) -> list[Problem]:
    """`n` distinct tasks of `split` whose number of operations lies in `difficulty` (inclusive).

    Deterministic in (n, seed, difficulty, split); task ids are "toy/<split>/<index:05d>"."""
    lo, hi = (difficulty, difficulty) if isinstance(difficulty, int) else difficulty
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    if not 1 <= lo <= hi <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty: expected 1 <= lo <= hi <= {MAX_DIFFICULTY}, got {difficulty!r}")
    rng, problems, seen = random.Random(seed), [], set()
    for _ in range(200 + 200 * n):
        if len(problems) == n:
            return problems
        kind = rng.choice(sorted(KINDS))
        ops = draw_composition(rng, kind, rng.randint(lo, hi))
        key = canonical_key(kind, ops)
        if key in seen or split_of(key) != split:
            continue
        problem = make_task(rng, f"toy/{split}/{len(problems):05d}", kind, ops)
        if problem is not None:
            seen.add(key)
            problems.append(problem)
    if len(problems) < n:
        raise ValueError(f"only {len(problems)} distinct {split} tasks found for difficulty {difficulty!r}; asked {n}")
    return problems


def write_tasks(path: str | os.PathLike, problems: list[Problem]) -> None:
    """Write problems as focalpo JSONL (atomic, via `focalpo.problems.jsonl.dump_jsonl`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    dump_jsonl(problems, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate toy-world Python tasks as focalpo JSONL.")
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--min", type=int, default=1, help="fewest operations per task")
    parser.add_argument("--max", type=int, default=3, help="most operations per task")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    if Path(args.out).exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    problems = generate_tasks(args.n, seed=args.seed, difficulty=(args.min, args.max), split=args.split)
    write_tasks(args.out, problems)
    print(f"wrote {len(problems)} {args.split} tasks to {args.out}")


if __name__ == "__main__":
    main()
