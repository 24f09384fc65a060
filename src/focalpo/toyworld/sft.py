"""Supervised fine-tuning data for the toy world: chat examples that teach a tiny model the four
skills focalpo's pipelines ask of it, in exactly the prompt formats those pipelines send.

    from focalpo.toyworld.tasks import generate_tasks
    from focalpo.toyworld.sft import build_sft_examples, write_sft
    examples = build_sft_examples(generate_tasks(200, seed=0), seed=0)
    write_sft("toy_sft.jsonl", examples)

Skills (one example per problem and skill; "repair" only for problems with a failing mutant):
- "solve": `focalpo.prompts.program_prompt` (PROGRAM_TEMPLATE rendered) -> the fenced reference;
- "test": `focalpo.prompts.test_prompt` (TEST_TEMPLATE rendered) -> one fenced `assert solve(<args>) == <expected>` from a call test;
- "teacher": CodeFlow TEACHER_TEMPLATE -> `<file>sol.py</file>` + reference, `<file>test_sol.py</file>`
  + a differential test file (`teacher_test_file`: the reference restated as `expected`, a loop comparing
  the two on 3-4 inputs), and the `<json>` block;
- "repair": [teacher prompt, teacher answer whose solution is a mutant of the reference (`mutate`),
  FIX_TEMPLATE with the real sandbox feedback of that mutant on the converted test file, the
  reference as the fix answer `<file>sol.py</file>` + fenced code].

Example: {"messages": [{"role": "user" | "assistant", "content": ...}, ...], "skill": ..., "task_id": ...}.
Convention: the loss is on the FINAL assistant message only; earlier turns are context.
Deterministic for a seed: every random choice draws from `random.Random(f"{seed}|{task_id}|{skill}")`.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import random
from pathlib import Path
from typing import Sequence

from focalpo.io import atomic_path
from focalpo.pipelines.codeflow_tests import format_feedback, test_file_to_tests
from focalpo.problems.types import Problem
from focalpo.prompts import (
    FIX_TEMPLATE,
    TEACHER_ANSWER_FORMAT,
    TEACHER_TEMPLATE,
    program_prompt,
    prompt_fields,
    render,
    test_prompt,
)
from focalpo.toyworld.tasks import LETTERS, run_reference

SKILLS = ("solve", "test", "teacher", "repair")
MODULE = "sol"  # the teacher answers' solution module: short, not a stdlib or sandbox harness name
SOLUTION_FILE, TEST_FILE = f"{MODULE}.py", f"test_{MODULE}.py"
MAX_MUTANTS_TRIED = 8  # mutants run in the sandbox per problem; the first failing one is kept
# The toy teacher's first prompt (`focalpo codeflow --teacher-template`): CodeFlow's answer format, the task last,
# next to the answer that must read it (the default TEACHER_TEMPLATE puts ~200 tokens of rules in between)
TOY_TEACHER_TEMPLATE = ("""Write two files for the task below: a solution file with the complete implementation, and a test
file that imports from the solution file and checks it with `assert` statements. Answer in exactly this format:

""" + TEACHER_ANSWER_FORMAT + """
Task:
{instruction}""")

# small, realistic bugs: operator swaps, neighbouring functions and methods
CMP_SWAPS = {ast.Gt: (ast.GtE, ast.Lt), ast.GtE: (ast.Gt,), ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt,),
             ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,)}
ARITH_SWAPS = {ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.Add,)}
FUNC_SWAPS = {"sum": ("max",), "max": ("min", "sum"), "min": ("max",), "prod": ("sum",), "len": ("sum",)}
METHOD_SWAPS = {"upper": ("lower",), "lower": ("upper",), "startswith": ("endswith",)}


def _msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def _fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def _call(test) -> str:
    return f"{test.entry_point}({', '.join(repr(a) for a in test.args)})"


def _assert(test) -> str:
    return f"assert {_call(test)} == {test.expected!r}"


def _rng(seed: int, problem: Problem, skill: str) -> random.Random:
    return random.Random(f"{seed}|{problem.task_id}|{skill}")


def solve_example(problem: Problem) -> list[dict]:
    return [_msg("user", program_prompt(problem)), _msg("assistant", _fenced(problem.canonical_solution))]


def small_input(rng: random.Random, kind: str):
    """An input whose expected output a tiny model can work out: ints 0-6, lists of 1-3 ints 0-6, lists of
    1-2 words of 1-3 letters (the tasks' own tests draw from -20..20 and longer lists)."""
    if kind == "int":
        return rng.randint(0, 6)
    if kind == "ints":
        return [rng.randint(0, 6) for _ in range(rng.randint(1, 3))]
    return ["".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 2))]


def inline_reference(source: str, value) -> str | None:
    """The reference applied to the literal `value` as one expression: each `name = EXPR` line substituted into
    the next, then the returned expression (`x = x + 5 if x > 3 else x - 2; return x` on 4 ->
    `4 + 5 if 4 > 3 else 4 - 2`); None for a body of another shape or a module with imports (a one-line test
    would lack them)."""
    module = ast.parse(source).body
    fn = module[0]
    if len(module) != 1 or not isinstance(fn, ast.FunctionDef) or len(fn.args.args) != 1:
        return None
    env: dict[str, ast.expr] = {fn.args.args[0].arg: ast.parse(repr(value), mode="eval").body}

    class Substitute(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return copy.deepcopy(env[node.id]) if isinstance(node.ctx, ast.Load) and node.id in env else node

    for stmt in fn.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            env[stmt.targets[0].id] = Substitute().visit(stmt.value)
        elif isinstance(stmt, ast.Return) and stmt.value is not None:
            return ast.unparse(Substitute().visit(stmt.value))
        else:
            return None
    return None


def _expected(source: str, value, output) -> str:
    """`output` written as the reference's expression on `value` when that evaluates to it, else its repr."""
    expr = inline_reference(source, value)
    try:
        if expr is None or eval(expr, {}) != output:  # noqa: S307 - our own generated reference, no builtins used
            return repr(output)
    except Exception:  # noqa: BLE001 - any failure: the literal value
        return repr(output)
    node = ast.parse(expr, mode="eval").body
    return f"({expr})" if isinstance(node, (ast.IfExp, ast.Compare, ast.BoolOp)) else expr


def small_asserts(problem: Problem, rng: random.Random, n: int) -> list[str]:
    """`n` distinct asserts on small inputs whose expected value is the instruction's operation written out on the
    input (`assert solve(4) == 4 + 5 if ...`, `inline_reference`): a tiny model cannot compute outputs, but it can
    copy what the instruction says; a test is then right exactly when the instruction was read right."""
    kind = problem.meta.get("kind", "int")
    inputs: list = []
    for _ in range(20 * n):
        value = small_input(rng, kind)
        if value not in inputs:
            inputs.append(value)
        if len(inputs) == n:
            break
    outputs = run_reference(problem.canonical_solution, inputs)
    if outputs is None:  # the reference raises on one of them: the task's own tests, which it passes
        return [_assert(t) for t in rng.sample(problem.tests["base"], min(n, len(problem.tests["base"])))]
    return [f"assert {problem.entry_point}({v!r}) == {_expected(problem.canonical_solution, v, out)}"
            for v, out in zip(inputs, outputs)]


def test_example(problem: Problem, rng: random.Random) -> list[dict]:
    return [_msg("user", test_prompt(problem)), _msg("assistant", _fenced(small_asserts(problem, rng, 1)[0]))]


def teacher_inputs(problem: Problem, rng: random.Random, n: int) -> list:
    """`n` distinct inputs of the teacher's test file: ints -3..8 (both sides of the tasks' thresholds), lists of
    1-3 such ints, lists of 1-2 short words."""
    kind = problem.meta.get("kind", "int")
    draw = {"int": lambda: rng.randint(-3, 8), "ints": lambda: [rng.randint(-3, 8) for _ in range(rng.randint(1, 3))]}
    inputs: list = []
    for _ in range(20 * n):
        value = draw[kind]() if kind in draw else small_input(rng, kind)
        if value not in inputs:
            inputs.append(value)
        if len(inputs) == n:
            break
    return inputs


def teacher_test_file(problem: Problem, rng: random.Random) -> str:
    """The toy teacher's tests: `from sol import solve`, the instruction restated as a reference function
    `expected` (the task's reference, renamed) and one loop comparing the two on 3-4 `teacher_inputs`, the
    failing input as the assertion's message.

    A differential test: its expected values are whatever `expected` computes, so the file is right exactly
    when the teacher read the instruction right, and writing it is the "solve" skill again. A tiny model can
    neither work out 3-4 expected outputs in a row (the asserts the policy's "test" skill writes) nor copy an
    input into two calls reliably; in this form it writes test files that are right about as often as its
    programs."""
    fn = problem.entry_point
    reference = problem.canonical_solution.replace(f"def {fn}(", "def expected(", 1).strip("\n")
    arg = ast.parse(problem.canonical_solution).body[-1].args.args[0].arg
    inputs = teacher_inputs(problem, rng, rng.choice((3, 4)))
    return (f"from {MODULE} import {fn}\n\n\n{reference}\n\n\n"
            f"for {arg} in {inputs!r}:\n    assert {fn}({arg}) == expected({arg}), {arg}\n")


def teacher_answer(solution: str, test_code: str) -> str:
    meta = json.dumps({"solution_file": SOLUTION_FILE, "test_file": TEST_FILE, "packages": []})
    return (f"<file>{SOLUTION_FILE}</file>\n{_fenced(solution)}\n<file>{TEST_FILE}</file>\n{_fenced(test_code)}\n"
            f"<json>{meta}</json>")


def fix_answer(solution: str) -> str:
    return f"<file>{SOLUTION_FILE}</file>\n{_fenced(solution)}"


def teacher_prompt(problem: Problem, template: str = TEACHER_TEMPLATE) -> str:
    return render(template, instruction=prompt_fields(problem)["prompt"])


# --------------------------------------------------------------------------------------------------
# mutants


def _replacements(node: ast.AST) -> list[ast.AST]:
    """Mutated copies of `node` (each one small bug), or [] if it offers none."""
    out: list[ast.AST] = []

    def variant(**fields) -> None:
        new = copy.deepcopy(node)
        for k, v in fields.items():
            setattr(new, k, v)
        out.append(new)

    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        for op in CMP_SWAPS.get(type(node.ops[0]), ()):
            variant(ops=[op()])
    elif isinstance(node, ast.BinOp):
        for op in ARITH_SWAPS.get(type(node.op), ()):
            variant(op=op())
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        variant(value=node.value + 1)
        variant(value=node.value - 1)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        out.append(copy.deepcopy(node.operand))  # forgot the negation
    elif isinstance(node, ast.Attribute) and node.attr in METHOD_SWAPS:
        for name in METHOD_SWAPS[node.attr]:
            variant(attr=name)
    elif isinstance(node, ast.Call):
        func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if func == "abs" and len(node.args) == 1:
            out.append(copy.deepcopy(node.args[0]))  # forgot abs
        for name in FUNC_SWAPS.get(func, ()):
            keywords = [ast.keyword("default", ast.Constant(0))] if name in ("max", "min") else []
            out.append(ast.Call(ast.Name(name, ast.Load()), copy.deepcopy(node.args), keywords))
    return out


def _offset(lines: list[str], lineno: int, col: int) -> int:
    return sum(len(line) for line in lines[: lineno - 1]) + col  # generated code is ASCII: bytes = chars


def mutate(reference: str, rng: random.Random) -> list[str]:
    """Distinct parsable mutants of `reference`, each with one small bug, in a shuffled order.

    Each rewrites only the source span of one node (an operator, constant, function or method
    name, a dropped `-` or `abs`) or drops one non-final statement of a function (a filter or
    map line), so the rest of the text stays the reference's own."""
    tree = ast.parse(reference)
    lines = reference.splitlines(keepends=True)
    mutants: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and len(node.body) > 1:
            for stmt in node.body[:-1]:
                start, end = _offset(lines, stmt.lineno, 0), _offset(lines, stmt.end_lineno + 1, 0)
                mutants.append(reference[:start] + reference[end:])
        if not hasattr(node, "end_col_offset") or isinstance(node, ast.stmt):
            continue
        start = _offset(lines, node.lineno, node.col_offset)
        end = _offset(lines, node.end_lineno, node.end_col_offset)
        for new in _replacements(node):
            mutants.append(reference[:start] + ast.unparse(new) + reference[end:])
    seen, out = {reference}, []
    for m in mutants:
        if m not in seen and _parses(m):
            seen.add(m)
            out.append(m)
    rng.shuffle(out)
    return out


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------------------------------
# examples


def _repairs(problems: Sequence[Problem], seed: int, workers: int | None, template: str) -> dict[str, list[dict]]:
    """task_id -> repair conversation, for the problems with a mutant that fails its test file."""
    from focalpo.sandbox import ExecPool, Job

    candidates = []  # (problem, test_code, tests, mutant)
    for p in problems:
        rng = _rng(seed, p, "repair")
        test_code = teacher_test_file(p, rng)
        tests = test_file_to_tests(test_code, MODULE).tests
        candidates += [(p, test_code, tests, m) for m in mutate(p.canonical_solution, rng)[:MAX_MUTANTS_TRIED]]
    if not candidates:
        return {}
    jobs = [Job(m, tests, module=MODULE, files={TEST_FILE: code}) for _, code, tests, m in candidates]
    with ExecPool(workers=workers) as pool:
        results = pool.map(jobs)
    out: dict[str, list[dict]] = {}
    for (p, test_code, tests, mutant), result in zip(candidates, results):
        feedback = "" if result.passed else format_feedback(result, tests)
        if p.task_id in out or not feedback:
            continue
        out[p.task_id] = [_msg("user", teacher_prompt(p, template)), _msg("assistant", teacher_answer(mutant, test_code)),
                          _msg("user", render(FIX_TEMPLATE, feedback=feedback)),
                          _msg("assistant", fix_answer(p.canonical_solution))]
    return out


def build_sft_examples(problems: Sequence[Problem], *, seed: int, skills: Sequence[str] = SKILLS,
                       workers: int | None = None, teacher_template: str = TEACHER_TEMPLATE) -> list[dict]:
    """One example per (problem, skill), problem-major in `skills` order (module doc); a problem
    none of whose first MAX_MUTANTS_TRIED mutants fails has no repair example. `teacher_template`: the first
    prompt of the "teacher" and "repair" chats (`focalpo codeflow --teacher-template`)."""
    unknown = [s for s in skills if s not in SKILLS]
    if unknown:
        raise ValueError(f"skills: unknown {unknown}; expected a subset of {SKILLS}")
    repairs = _repairs(problems, seed, workers, teacher_template) if "repair" in skills else {}
    examples = []
    for p in problems:
        for skill in skills:
            if skill == "solve":
                messages = solve_example(p)
            elif skill == "test":
                messages = test_example(p, _rng(seed, p, skill))
            elif skill == "teacher":
                messages = [_msg("user", teacher_prompt(p, teacher_template)),
                            _msg("assistant", teacher_answer(p.canonical_solution,
                                                             teacher_test_file(p, _rng(seed, p, skill))))]
            elif p.task_id in repairs:
                messages = repairs[p.task_id]
            else:
                continue
            examples.append({"messages": messages, "skill": skill, "task_id": p.task_id})
    return examples


def write_sft(path: str | os.PathLike, examples: Sequence[dict], *, overwrite: bool = False) -> None:
    """Write examples as JSONL (atomic); FileExistsError if `path` exists and not `overwrite`."""
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), encoding="utf-8")
