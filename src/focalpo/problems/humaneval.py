"""Loader for the original HumanEval (openai/human-eval): `check(candidate)` split into assert tests.

A row's `test` is a module defining `check(candidate)` (plus METADATA, imports, helpers). When the
body of `check` is only `assert` statements (no-op expressions such as a stray `print` or a comment
string are ignored), each assert becomes its own `AssertTest`, so a pass matrix sees which checks a
program fails. Each test's `setup` is the rest of the test module (everything but `check`) plus
`candidate = <entry_point>`. Otherwise (loops, local variables) the problem gets one `AssertTest`
that runs the whole `check(<entry_point>)`.

Run: `load_humaneval("../shared/data/HumanEval.jsonl.gz")`.
"""

from __future__ import annotations

import ast
import os

from focalpo.problems.rows import Row, iter_rows
from focalpo.problems.types import Problem
from focalpo.sandbox.types import AssertTest

SPLIT = "base"


def load_humaneval(path: str | os.PathLike) -> list[Problem]:
    """All problems of a HumanEval JSONL file, in file order."""
    return [_problem(row) for row in iter_rows(path)]


def _problem(row: Row) -> Problem:
    prompt = row.text("prompt")
    entry_point = row.text("entry_point")
    tests = check_to_assert_tests(row, row.text("test"), entry_point)
    return Problem(
        task_id=row.text("task_id"),
        prompt=prompt,
        entry_point=entry_point,
        canonical_solution=row.text("canonical_solution"),
        tests={SPLIT: tests},
        meta={"test": row.data["test"]},
        code_prefix=prompt,
    )


def check_to_assert_tests(row: Row, test_src: str, entry_point: str) -> list[AssertTest]:
    """Turn a `check(candidate)` test module into AssertTests (see the module docstring)."""
    module = row.parse_test(test_src)
    checks = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1:
        raise row.error("test", f"expected one top-level `def check(...)`, found {len(checks)}")
    check = checks[0]
    if len(check.args.args) != 1:
        raise row.error("test", "`check` must take exactly one argument (the candidate)")
    if not _only_asserts(check.body):
        return [AssertTest(name=f"{SPLIT}/check", code=f"check({entry_point})", setup=test_src)]
    rest = [n for n in module.body if n is not check]
    candidate = check.args.args[0].arg
    setup = _source(test_src, rest) + f"{candidate} = {entry_point}\n"
    asserts = [n for n in check.body if isinstance(n, ast.Assert)]
    return [
        AssertTest(name=f"{SPLIT}/{i}", code=_statement_source(test_src, node), setup=setup)
        for i, node in enumerate(asserts)
    ]


def _only_asserts(body: list[ast.stmt]) -> bool:
    return all(isinstance(n, ast.Assert) or _is_noop(n) for n in body)


def _is_noop(node: ast.stmt) -> bool:
    """A bare constant or name (`print` without a call, a string used as a comment)."""
    return isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.Name))


def _source(src: str, nodes: list[ast.stmt]) -> str:
    """Source text of top-level statements (decorators included), one after the other."""
    lines = src.splitlines(keepends=True)
    parts, done = [], 0  # `done`: last line already copied (`a = 1; b = 2` share one line)
    for node in nodes:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        first = max(first, done + 1)
        if first <= node.end_lineno:
            parts.append("".join(lines[first - 1 : node.end_lineno]).rstrip("\n") + "\n")
        done = max(done, node.end_lineno)
    return "".join(parts)


def _statement_source(src: str, node: ast.stmt) -> str:
    """The statement's own text when it parses on its own (dedented), else `ast.unparse`."""
    text = ast.get_source_segment(src, node)
    if text is not None:
        try:
            ast.parse(text)
            return text
        except SyntaxError:
            pass
    return ast.unparse(node)
