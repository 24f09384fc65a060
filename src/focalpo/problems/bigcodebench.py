"""Loader for BigCodeBench (harness field format): one `UnittestTest` per test method.

The `test` field is a `unittest` module. Test classes are the module's classes deriving from
`unittest.TestCase` / `TestCase` (or from another test class of the module, whose test methods they
inherit, as unittest's loader does); their methods named `test*` become
`UnittestTest(name="TestCases.test_x", module=test, method="TestCases.test_x", namespace="program")`,
in source order: as in BigCodeBench's harness, program and test code share one module namespace
that starts with `sys`, `os` and `environ`, so a reference solution may use what only its tests
import.

The reference program is `complete_prompt + canonical_solution` (the BigCodeBench harness joins
them with an extra "\\n", which only adds a blank line); `prompt` is the complete prompt or the
instruct prompt, chosen by `prompt=`. `meta["libs"]` lists the libraries the task imports.

Run: `load_bigcodebench("../shared/data/BigCodeBench-v0.1.0.jsonl.gz", prompt="instruct")`.
"""

from __future__ import annotations

import ast
import os

from focalpo.problems.rows import Row, iter_rows
from focalpo.problems.types import Problem
from focalpo.sandbox.types import UnittestTest

SPLIT = "base"
PROMPT_KINDS = ("complete", "instruct")
_TESTCASE_BASES = {"unittest.TestCase", "TestCase"}


def load_bigcodebench(path: str | os.PathLike, prompt: str = "complete") -> list[Problem]:
    """All problems of a BigCodeBench JSONL file, in file order."""
    if prompt not in PROMPT_KINDS:
        raise ValueError(f"prompt must be one of {PROMPT_KINDS}, got {prompt!r}")
    return [_problem(row, prompt) for row in iter_rows(path)]


def _problem(row: Row, prompt_kind: str) -> Problem:
    complete_prompt, instruct_prompt = row.text("complete_prompt"), row.text("instruct_prompt")
    test = row.text("test")
    methods = unittest_methods(row, test)
    return Problem(
        task_id=row.text("task_id"),
        prompt=complete_prompt if prompt_kind == "complete" else instruct_prompt,
        entry_point=row.text("entry_point"),
        canonical_solution=row.text("canonical_solution"),
        # One namespace for program and tests, as the harness runs them (UnittestTest.namespace).
        tests={SPLIT: [UnittestTest(name=m, module=test, method=m, namespace="program") for m in methods]},
        instruct_prompt=instruct_prompt,
        meta={
            "libs": _libs(row),
            "code_prompt": row.text("code_prompt", ""),
            "complete_prompt": complete_prompt,
            "prompt_kind": prompt_kind,
        },
        code_prefix=complete_prompt,
    )


def unittest_methods(row: Row, test_src: str) -> list[str]:
    """"Class.method" for every test method unittest would discover in `test_src`."""
    module = row.parse_test(test_src)
    own: dict[str, list[str]] = {}  # test class -> its test methods, inherited ones first
    for node in module.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [ast.unparse(b) for b in node.bases]
        if not any(b in _TESTCASE_BASES or b in own for b in bases):
            continue
        inherited = [m for b in bases for m in own.get(b, [])]
        defined = [f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        names = list(dict.fromkeys(inherited + [n for n in defined if n.startswith("test")]))
        own[node.name] = names
    methods = [f"{cls}.{m}" for cls, names in own.items() for m in names]
    if not methods:
        raise row.error("test", "no unittest test method found")
    return methods


def _libs(row: Row) -> list[str]:
    """`libs` is stored as the repr of a Python list of strings."""
    raw = row.get("libs", (str, list), [])
    if isinstance(raw, list):
        value = raw
    else:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise row.error("libs", f"expected a list of library names, got {raw!r:.80}") from None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise row.error("libs", f"expected a list of library names, got {raw!r:.80}")
    return value
