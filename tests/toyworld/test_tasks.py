"""Tests of the toy-world task generator: determinism, difficulty, the structural train/held-out
split, references passing (and broken references failing) their tests in the real sandbox, and the
JSONL round trip.

Run: .venv/bin/python -m pytest tests/toyworld -q
"""

from __future__ import annotations

import json
import random

import pytest

from focalpo.problems.jsonl import load_jsonl
from focalpo.sandbox import ExecPool, Job
from focalpo.sandbox.types import CallTest
from focalpo.toyworld import tasks
from focalpo.toyworld.tasks import (
    canonical_key,
    draw_composition,
    generate_tasks,
    render,
    split_of,
    write_tasks,
)


def _fingerprint(problems):
    return [(p.task_id, p.instruct_prompt, p.canonical_solution, p.tests) for p in problems]


def test_same_seed_same_tasks_different_seed_different():
    a = generate_tasks(40, seed=5, difficulty=(1, 4))
    b = generate_tasks(40, seed=5, difficulty=(1, 4))
    c = generate_tasks(40, seed=6, difficulty=(1, 4))
    assert _fingerprint(a) == _fingerprint(b)
    assert [p.meta["key"] for p in a] != [p.meta["key"] for p in c]
    assert [p.task_id for p in a[:3]] == ["toy/train/00000", "toy/train/00001", "toy/train/00002"]


def test_golden_task():
    """Phrasing, code style or test inputs changing must be a deliberate edit of this test."""
    p = generate_tasks(1, seed=2024, difficulty=(3, 3))[0]
    assert p.task_id == "toy/train/00000"
    assert p.meta["key"] == "ints|lt:2|negate|min"
    assert p.instruct_prompt == (
        "Write a function `solve(xs)` that takes a list of integers xs, keeps the numbers less than 2, "
        "negates each and returns the smallest of them (0 if there are none)."
    )
    assert p.prompt == p.instruct_prompt and p.code_prefix == "" and p.entry_point == "solve"
    assert p.canonical_solution == (
        "def solve(xs):\n"
        "    xs = [x for x in xs if x < 2]\n"
        "    xs = [-x for x in xs]\n"
        "    return min(xs, default=0)\n"
    )
    assert p.tests["base"][0] == CallTest("t0", "solve", ([],), 0)
    assert p.tests["base"][2] == CallTest("t2", "solve", ([-1, 8, -2, 6, 2, 4],), 1)  # min(-(-1), 2) = 1


def test_render_of_a_hand_written_composition():
    instruction, source = render("strs", [("starts", "a"), ("length", None), ("sum", None)])
    assert instruction == (
        "Write a function `solve(words)` that takes a list of strings words, keeps the words starting "
        "with 'a', replaces each by its length and returns their sum."
    )
    namespace: dict = {}
    exec(source, namespace)
    assert namespace["solve"](["ab", "b", "abc", "A"]) == 5  # len("ab") + len("abc")
    _, source = render("int", [("cond", 2, ("mul", 3), ("id", None))])
    assert source == "def solve(x):\n    x = x * 3 if x > 2 else x\n    return x\n"
    assert canonical_key("int", [("cond", 2, ("mul", 3), ("id", None))]) == "int|cond:2:mul:3:id"


@pytest.mark.parametrize("difficulty", [1, 2, 3, 4])
def test_difficulty_is_the_number_of_operations(difficulty):
    problems = generate_tasks(25, seed=difficulty, difficulty=difficulty)
    for p in problems:
        assert p.meta["difficulty"] == len(p.meta["ops"]) == difficulty
        body = p.canonical_solution.split("def solve(")[1].splitlines()[1:]
        # one line per operation, plus `return <var>` when the last operation is not a fold
        plain_return = body[-1].strip() in ("return x", "return xs", "return words")
        assert len(body) == difficulty + plain_return, p.canonical_solution
    spread = generate_tasks(60, seed=0, difficulty=(2, 4))
    assert {p.meta["difficulty"] for p in spread} == {2, 3, 4}


def test_bad_arguments_raise(monkeypatch):
    with pytest.raises(ValueError, match="split"):
        generate_tasks(1, seed=0, split="test")
    with pytest.raises(ValueError, match="difficulty"):
        generate_tasks(1, seed=0, difficulty=(0, 2))
    monkeypatch.setattr(tasks, "split_of", lambda key: "train")  # no composition is held out
    with pytest.raises(ValueError, match="only 0 distinct heldout tasks"):
        generate_tasks(1, seed=0, split="heldout")


def test_splits_are_disjoint_by_canonical_key_across_seeds():
    train, heldout = set(), set()
    for seed in range(6):
        for split, keys in (("train", train), ("heldout", heldout)):
            problems = generate_tasks(30, seed=seed, difficulty=(1, 3), split=split)
            assert len({p.meta["key"] for p in problems}) == 30  # deduplicated within a call
            assert all(p.meta["split"] == split and p.task_id.startswith(f"toy/{split}/") for p in problems)
            keys.update(p.meta["key"] for p in problems)
    assert train and heldout and not train & heldout
    assert all(split_of(k) == "train" for k in train) and all(split_of(k) == "heldout" for k in heldout)


def test_heldout_share_is_about_twenty_percent():
    rng = random.Random(0)
    keys = set()
    for _ in range(3000):
        kind = rng.choice(["int", "ints", "strs"])
        keys.add(canonical_key(kind, draw_composition(rng, kind, rng.randint(1, 3))))
    share = sum(split_of(k) == "heldout" for k in keys) / len(keys)
    assert len(keys) > 1500
    assert 0.17 < share < 0.23, share


def test_tests_discriminate_and_are_json_plain():
    for p in generate_tasks(60, seed=11, difficulty=(1, 4)):
        tests = p.tests["base"]
        assert 5 <= len(tests) <= 10
        assert len({json.dumps(t.expected) for t in tests}) > 1, p.task_id
        assert all(len(t.args) == 1 and isinstance(t.args[0], (int, str, list)) for t in tests)
        assert len({json.dumps(t.args) for t in tests}) == len(tests)  # distinct inputs


@pytest.fixture(scope="module")
def pool():
    with ExecPool(workers=2) as p:
        yield p


def test_references_pass_their_tests_in_the_sandbox(pool):
    problems = generate_tasks(20, seed=3, difficulty=(1, 4)) + generate_tasks(10, seed=3, split="heldout")
    results = pool.map([Job(p.reference_program(), p.all_tests()) for p in problems])
    failed = [(p.task_id, r.status) for p, r in zip(problems, results) if not r.passed]
    assert failed == []
    assert sum(len(r.verdicts) for r in results) == sum(len(p.all_tests()) for p in problems)


def test_broken_references_fail_in_the_sandbox(pool):
    problems = generate_tasks(80, seed=4, difficulty=(1, 3))
    broken = [p for p in problems if " + " in p.canonical_solution][:5]
    assert len(broken) == 5
    jobs = [Job(p.canonical_solution.replace(" + ", " - "), p.all_tests()) for p in broken]
    for p, r in zip(broken, pool.map(jobs)):
        assert not r.passed, p.canonical_solution
        assert any(v.status == "wrong_answer" for v in r.verdicts)


def test_jsonl_round_trip(tmp_path):
    problems = generate_tasks(30, seed=8, difficulty=(1, 4)) + generate_tasks(5, seed=8, split="heldout")
    path = tmp_path / "sub" / "toy.jsonl"
    write_tasks(path, problems)
    assert load_jsonl(path) == problems
    assert len(path.read_text().splitlines()) == 35
