"""Tests of focalpo.toyworld.sft: the SFT examples speak the pipelines' exact prompt formats, their
answers are correct in the sandbox, and repair examples start from a really failing mutant."""

from __future__ import annotations

import ast
import json
import random
from dataclasses import replace

import pytest

from focalpo.extract import extract_code, split_asserts
from focalpo.pipelines.codeflow_format import parse_fix_answer, parse_teacher_answer
from focalpo.pipelines.codeflow_tests import test_file_to_tests
from focalpo.pipelines.focused import FocusedConfig
from focalpo.prompts import FIX_TEMPLATE, TEACHER_TEMPLATE, program_prompt
from focalpo.prompts import test_prompt as make_test_prompt
from focalpo.sandbox import AssertTest, ExecPool, Job
from focalpo.sandbox.jobfiles import check_module_name
from focalpo.toyworld.sft import (
    MODULE,
    SKILLS,
    build_sft_examples,
    inline_reference,
    mutate,
    small_asserts,
    write_sft,
)
from focalpo.toyworld.tasks import generate_tasks

PROBLEMS = generate_tasks(6, seed=0, difficulty=2)


@pytest.fixture(scope="module")
def examples():
    return build_sft_examples(PROBLEMS, seed=0, workers=2)


def by_skill(examples, skill):
    return [e for e in examples if e["skill"] == skill]


def run(jobs):
    with ExecPool(workers=2) as pool:
        return pool.map(jobs)


def test_layout_and_counts(examples):
    assert [e["skill"] for e in examples[:3]] == ["solve", "test", "teacher"]
    for skill in ("solve", "test", "teacher"):
        assert [e["task_id"] for e in by_skill(examples, skill)] == [p.task_id for p in PROBLEMS]
    assert len(by_skill(examples, "repair")) >= 5  # a problem has none only if no mutant fails
    for e in examples:
        roles = [m["role"] for m in e["messages"]]
        assert roles[-1] == "assistant" and roles[::2] == ["user"] * len(roles[::2])
        assert len(roles) == (4 if e["skill"] == "repair" else 2)
    check_module_name(MODULE)


def test_solve_prompt_is_the_focused_pipelines(examples):
    for p, e in zip(PROBLEMS, by_skill(examples, "solve")):
        user, answer = (m["content"] for m in e["messages"])
        assert user == program_prompt(p, FocusedConfig().program_template, FocusedConfig().prompt_style)
        assert extract_code(answer).strip("\n") == p.canonical_solution.strip("\n")


def test_test_example_asserts_a_true_fact(examples):
    jobs, chosen = [], set()
    for p, e in zip(PROBLEMS, by_skill(examples, "test")):
        user, answer = (m["content"] for m in e["messages"])
        assert user == make_test_prompt(p, FocusedConfig().test_template)
        asserts = split_asserts(extract_code(answer))
        assert len(asserts) == 1 and asserts[0].startswith("assert solve(")
        chosen.add(asserts[0])
        jobs.append(Job(p.canonical_solution, [AssertTest("t", asserts[0])]))
    assert all(r.passed for r in run(jobs))
    # a wrong expected value must fail the same way: the check is not vacuous
    wrong = jobs[0].tests[0].code.rsplit("==", 1)[0] + "== 'nope'"
    assert not run([Job(PROBLEMS[0].canonical_solution, [AssertTest("t", wrong)])])[0].passed
    assert len(chosen) == len(PROBLEMS)


def test_teacher_answer_parses_and_its_tests_pass(examples):
    jobs = []
    for p, e in zip(PROBLEMS, by_skill(examples, "teacher")):
        user, answer = (m["content"] for m in e["messages"])
        assert user == TEACHER_TEMPLATE.replace("{instruction}", p.instruct_prompt)
        parsed = parse_teacher_answer(answer)
        assert (parsed.solution_name, parsed.test_name, parsed.packages) == ("sol.py", "test_sol.py", ())
        assert parsed.solution_code.strip("\n") == p.canonical_solution.strip("\n")
        tests, skipped = test_file_to_tests(parsed.test_code, parsed.module_name)
        assert skipped == [] and len(tests) == 1  # one loop over the inputs
        jobs.append(Job(parsed.solution_code, tests, module=MODULE, files={parsed.test_name: parsed.test_code}))
    results = run(jobs)
    assert [len(r.verdicts) for r in results] == [len(j.tests) for j in jobs]
    assert all(v.passed for r in results for v in r.verdicts)


def test_teacher_test_file_is_a_differential_test_of_the_reference(examples):
    for p, e in zip(PROBLEMS, by_skill(examples, "teacher")):
        module = ast.parse(parse_teacher_answer(e["messages"][1]["content"]).test_code)
        # `expected` is the task's reference (with its imports) under another name: the file is right when the
        # instruction is read right
        reference = ast.parse(p.canonical_solution.replace("def solve(", "def expected("))
        n = len(reference.body)
        assert ast.unparse(module.body[0]) == f"from {MODULE} import solve"
        assert ast.dump(ast.Module(module.body[1:n + 1], [])) == ast.dump(reference)
        (loop,) = module.body[n + 1:]  # for v in [...]: assert solve(v) == expected(v), v
        check = loop.body[0]
        call, other = check.test.left, check.test.comparators[0]
        assert (call.func.id, other.func.id) == ("solve", "expected")
        assert ast.unparse(call.args[0]) == ast.unparse(other.args[0]) == ast.unparse(check.msg) == loop.target.id
        inputs = ast.literal_eval(loop.iter)  # on both sides of the tasks' thresholds
        assert len(inputs) in (3, 4) and len({repr(v) for v in inputs}) == len(inputs)
        flat = [x for v in inputs for x in (v if isinstance(v, list) else [v])]
        assert all(-3 <= x <= 8 for x in flat if isinstance(x, int))


def test_the_toy_teachers_own_prompt_reaches_both_codeflow_chats():
    from focalpo.pipelines.codeflow import CodeflowConfig
    from focalpo.toyworld.sft import TOY_TEACHER_TEMPLATE

    CodeflowConfig(out="x", teacher_template=TOY_TEACHER_TEMPLATE).check()  # `--teacher-template` takes it
    examples = build_sft_examples(PROBLEMS[:3], seed=0, skills=("teacher", "repair"), workers=2,
                                  teacher_template=TOY_TEACHER_TEMPLATE)
    assert {e["skill"] for e in examples} == {"teacher", "repair"}
    for e in examples:
        p = next(p for p in PROBLEMS if p.task_id == e["task_id"])
        assert e["messages"][0]["content"] == TOY_TEACHER_TEMPLATE.replace("{instruction}", p.instruct_prompt)
        assert e["messages"][0]["content"].endswith(p.instruct_prompt)  # the task last, next to the answer


def test_repair_starts_from_a_failing_mutant_and_ends_at_the_reference(examples):
    repairs = by_skill(examples, "repair")
    refs = {p.task_id: p.canonical_solution for p in PROBLEMS}
    jobs = []
    for e in repairs:
        prompt, wrong, fix_prompt, fix = (m["content"] for m in e["messages"])
        assert prompt == TEACHER_TEMPLATE.replace("{instruction}", next(
            p.instruct_prompt for p in PROBLEMS if p.task_id == e["task_id"]))
        parsed = parse_teacher_answer(wrong)
        assert parsed.solution_code.strip("\n") != refs[e["task_id"]].strip("\n")
        head, tail = FIX_TEMPLATE.split("{feedback}")
        assert fix_prompt.startswith(head) and fix_prompt.endswith(tail)
        assert " tests failed." in fix_prompt or "failed to load" in fix_prompt
        assert parse_fix_answer(fix, "sol.py").strip("\n") == refs[e["task_id"]].strip("\n")
        tests = test_file_to_tests(parsed.test_code, MODULE).tests
        jobs.append(Job(parsed.solution_code, tests, module=MODULE, files={parsed.test_name: parsed.test_code}))
    assert not any(r.passed for r in run(jobs))


def test_mutate_gives_distinct_parsable_small_changes():
    reference = "def solve(xs):\n    xs = [x for x in xs if x > 2]\n    return sum(xs)\n"
    mutants = mutate(reference, random.Random(0))
    assert len(mutants) == len(set(mutants)) and reference not in mutants
    for m in mutants:
        ast.parse(m)
    expected = {
        reference.replace("x > 2", "x >= 2"), reference.replace("x > 2", "x < 2"),
        reference.replace("x > 2", "x > 3"), reference.replace("x > 2", "x > 1"),
        reference.replace("sum(xs)", "max(xs, default=0)"),
        "def solve(xs):\n    return sum(xs)\n",  # the filter line dropped
    }
    assert set(mutants) == expected
    assert sorted(mutate(reference, random.Random(1))) == sorted(mutants)
    assert mutate("def solve(x):\n    return x\n", random.Random(0)) == []


def test_deterministic_for_a_seed(examples):
    assert build_sft_examples(PROBLEMS, seed=0, workers=2) == examples
    other = build_sft_examples(PROBLEMS, seed=1, skills=("test",), workers=2)
    assert [e["messages"] for e in other] != [e["messages"] for e in by_skill(examples, "test")]
    with pytest.raises(ValueError, match="unknown"):
        build_sft_examples(PROBLEMS, seed=0, skills=("solve", "poem"))
    assert set(SKILLS) == {"solve", "test", "teacher", "repair"}


def test_write_sft_round_trip_and_refuses_overwrite(tmp_path, examples):
    path = tmp_path / "sft.jsonl"
    write_sft(path, examples)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == examples
    with pytest.raises(FileExistsError, match="overwrite"):
        write_sft(path, examples[:1])
    assert len(path.read_text().splitlines()) == len(examples)
    write_sft(path, examples[:1], overwrite=True)
    assert [json.loads(line) for line in path.read_text().splitlines()] == examples[:1]


@pytest.mark.parametrize("source, value, expected", [
    ("def solve(x):\n    x = x + 5 if x > 3 else x - 2\n    return x\n", 4, "4 + 5 if 4 > 3 else 4 - 2"),
    ("def solve(x):\n    x = x - 2\n    x = -x\n    return x\n", 1, "-(1 - 2)"),
    ("def solve(xs):\n    xs = [x for x in xs if x % 2 == 0]\n    xs = [x * x for x in xs]\n    return xs\n",
     [1, 2], "[x * x for x in [x for x in [1, 2] if x % 2 == 0]]"),
    ("def solve(words):\n    words = [w[::-1] for w in words]\n    xs = [len(w) for w in words]\n    return xs\n",
     ["ab"], "[len(w) for w in [w[::-1] for w in ['ab']]]"),
    ("def solve(xs):\n    return max(xs, default=0)\n", [3], "max([3], default=0)"),
    ("def solve(x):\n    if x > 1:\n        return x\n    return -x\n", 2, None),  # not straight-line: no expression
    ("import math\n\ndef solve(xs):\n    return math.prod(xs)\n", [2], None),  # needs an import
])
def test_inline_reference_writes_the_body_as_one_expression(source, value, expected):
    expr = inline_reference(source, value)
    assert expr == expected
    if expr is not None:
        namespace: dict = {}
        exec(source, namespace)
        assert eval(expr) == namespace["solve"](value)


def test_small_asserts_are_true_small_and_spell_out_the_operation():
    for i, problem in enumerate(generate_tasks(40, seed=3, difficulty=(1, 2))):
        lines = small_asserts(problem, random.Random(i), 3)
        assert len(lines) == 3 and len(set(lines)) == 3
        namespace: dict = {}
        exec(problem.canonical_solution, namespace)
        for line in lines:
            exec(line, dict(namespace))  # true of the reference
            call = ast.parse(line).body[0].test.left
            arg = ast.literal_eval(call.args[0])
            values = arg if isinstance(arg, list) else [arg]
            assert len(values) <= 3 and all(0 <= v <= 6 if isinstance(v, int) else len(v) <= 3 for v in values)
            rhs = ast.parse(line).body[0].test.comparators[0]
            expr = inline_reference(problem.canonical_solution, arg)
            # the operation on the input, unless the task needs an import (math.prod) a one-line test would lack
            if "import" in problem.canonical_solution:
                assert expr is None and ast.literal_eval(rhs) == eval(line.split(" == ", 1)[0][7:], dict(namespace))
            else:
                assert ast.unparse(rhs) == ast.unparse(ast.parse(expr, mode="eval").body)


def test_small_asserts_fall_back_to_the_tasks_tests_when_the_reference_raises():
    problem = generate_tasks(1, seed=0, difficulty=1)[0]
    raising = replace(problem, canonical_solution="def solve(x):\n    return 1 // 0\n")
    lines = small_asserts(raising, random.Random(0), 2)
    assert set(lines) <= {f"assert solve({t.args[0]!r}) == {t.expected!r}" for t in problem.tests["base"]}
