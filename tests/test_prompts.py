"""Tests of focalpo.prompts: one renderer that leaves code's braces alone, and the problem prompts.

Run: .venv/bin/python -m pytest tests/test_prompts.py -q
"""

from __future__ import annotations

import pytest

from focalpo.problems.types import Problem
from focalpo.prompts import (
    FIX_TEMPLATE,
    JUDGE_TEMPLATE,
    PROGRAM_TEMPLATE,
    SYNTH_TEMPLATE,
    TEACHER_TEMPLATE,
    TEST_TEMPLATE,
    program_prompt,
    prompt_fields,
    render,
)
from focalpo.prompts import (
    test_prompt as make_test_prompt,
)


def test_render_replaces_only_the_given_fields():
    template = "d = {'a': 1}\n{prompt} and {other}"
    assert render(template, prompt="P") == "d = {'a': 1}\nP and {other}"


def test_render_inserts_values_as_written():
    # a program holding "{rejected}" must not get the rejected program pasted into it
    assert render(JUDGE_TEMPLATE, instruction="i", chosen='s = "{rejected}"', rejected="BAD").count("BAD") == 1
    assert render("{a}|{b}", a="{b}", b="x") == "{b}|x"


@pytest.mark.parametrize(
    "template, fields",
    [
        (PROGRAM_TEMPLATE, ("prompt",)),
        (TEST_TEMPLATE, ("prompt", "entry_point")),
        (TEACHER_TEMPLATE, ("instruction",)),
        (FIX_TEMPLATE, ("feedback",)),
        (JUDGE_TEMPLATE, ("instruction", "chosen", "rejected")),
        (SYNTH_TEMPLATE, ("concepts",)),
    ],
)
def test_every_template_has_its_fields(template, fields):
    for name in fields:
        assert "{" + name + "}" in template
        assert "{" + name + "}" not in render(template, **{n: "X" for n in fields})


def _problem(task_id: str = "t/0", prompt: str = "def f(x):\n", code_prefix: str = "def f(x):\n") -> Problem:
    return Problem(task_id=task_id, prompt=prompt, entry_point="f", canonical_solution="", tests={},
                   code_prefix=code_prefix)


def test_program_and_test_prompts_fill_the_problem():
    p = _problem()
    assert prompt_fields(p) == {"prompt": "def f(x):\n", "entry_point": "the function `f`"}
    assert program_prompt(p) == render(PROGRAM_TEMPLATE, prompt="def f(x):\n")
    assert "the function `f`" in make_test_prompt(p) and "def f(x):" in make_test_prompt(p)
    assert program_prompt(p, "Solve: {prompt}") == "Solve: def f(x):\n"


def test_complete_style_continues_the_code_prefix_or_says_why_not():
    assert program_prompt(_problem(), style="complete") == "def f(x):\n"
    with pytest.raises(ValueError, match="t/1.*no code prefix.*prompt_style=instruct"):
        program_prompt(_problem("t/1", "Write a function.", code_prefix=""), style="complete")
