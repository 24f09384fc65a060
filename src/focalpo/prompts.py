"""Every prompt focalpo sends to a model, and the one way to fill one in.

    render(PROGRAM_TEMPLATE, prompt="Write fib(n).", entry_point="the function `fib`")
    program_prompt(problem)           # what `focalpo focused` and `focalpo sample` ask for a program
    test_prompt(problem)              # what `focalpo focused` asks for a test case

Templates (each command takes its own as an option, e.g. `--program-template FILE`):
- `PROGRAM_TEMPLATE` ({prompt}, {entry_point}), `TEST_TEMPLATE` (same fields): Focused-DPO's program
  and test prompts; `focalpo sample` uses the program prompt, so evaluation asks what training asked;
- `TEACHER_TEMPLATE` ({instruction}), `FIX_TEMPLATE` ({feedback}): CodeFlow's first turn and its
  feedback turns (the answer format they ask for is parsed by `focalpo.pipelines.codeflow_format`);
- `JUDGE_TEMPLATE` ({instruction}, {chosen}, {rejected}): CodeFlow's LLM-judge filter;
- `SYNTH_TEMPLATE` ({concepts}, {n}): `focalpo synth-prompts`.

`render` replaces each `{name}` it is given and leaves every other brace alone: prompts hold code,
and code has braces (`str.format` would choke on a dict literal).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from focalpo.problems.types import Problem

PROGRAM_TEMPLATE = """Solve the following programming problem in Python.

{prompt}

Answer with a complete, self-contained Python solution in a single ```python code block."""

TEST_TEMPLATE = """Here is a programming problem:

{prompt}

Write one test case for {entry_point}: a single Python `assert` statement that calls it with \
concrete inputs and checks the exact expected result. Answer with only that assert statement in a \
single ```python code block; do not write the solution."""

COMPLETE_STOP = ["\nif __name__", "\ndef main(", "\nprint(", "\n```"]  # evalplus' stops for base models

# CodeFlow's answer format, as the teacher prompts show it (parsed by focalpo.pipelines.codeflow_format)
TEACHER_ANSWER_FORMAT = """<file>NAME.py</file>
```python
# the complete solution
```
<file>test_NAME.py</file>
```python
from NAME import ...
# the tests
```
<json>{"solution_file": "NAME.py", "test_file": "test_NAME.py", "packages": []}</json>
"""

TEACHER_TEMPLATE = ("""You are an expert Python programmer. Solve the programming task below.

Task:
{instruction}

Write two files: a solution file with the complete implementation, and a test file that imports
from the solution file and checks it with `assert` statements, pytest-style `def test_...():`
functions without arguments, or `unittest.TestCase` methods. Cover normal and edge cases, one
behaviour per check. The tests must not read stdin, files or the network.

Answer in exactly this format (NAME: a short lowercase module name of letters, digits and "_"):

"""
    + TEACHER_ANSWER_FORMAT
    + """
List in "packages" the third-party packages the code needs (none for the standard library).
""")

FIX_TEMPLATE = """Running your tests against your solution failed:

{feedback}

Fix the solution. The test file stays as it is: do not change or repeat it. Answer with the complete
corrected solution file only, in the same format: its <file> tag with the same name, then one fenced
python block.
"""

JUDGE_TEMPLATE = """Two Python programs were written for this task:

{instruction}

Program A (correct):
```python
{chosen}
```

Program B (incorrect):
```python
{rejected}
```

Is there a significant logical difference between A and B (not only formatting, naming or \
comments)? Answer with one word: yes or no."""

SYNTH_TEMPLATE = """You are writing exercises for a Python programming course.

Write ONE self-contained Python programming problem that exercises these concepts:
{concepts}

Requirements:
- The problem is solved by implementing a single Python function; state its signature.
- Describe the inputs, the expected output and the edge cases precisely, with one or two examples.
- Only the Python standard library may be needed; no files, network access or user input.
- Do not write the solution.

Answer in exactly this format:
Problem:
<the problem statement, including the function signature>
Entry point: <the function name>
"""


def render(template: str, **fields: str) -> str:
    """`template` with each `{name}` of `fields` replaced; other braces are left alone (code has them).

    One pass over the template: a value is never searched for fields itself, so a program that
    holds the text "{rejected}" is inserted as written."""
    if not fields:
        return template
    pattern = re.compile("|".join(re.escape("{" + name + "}") for name in fields))
    return pattern.sub(lambda m: fields[m.group(0)[1:-1]], template)


def prompt_fields(problem: Problem) -> dict[str, str]:
    """The template fields of a problem: `{prompt}` (its instruction) and `{entry_point}` (a phrase)."""
    entry = f"the function `{problem.entry_point}`" if problem.entry_point else "the function the problem asks for"
    return {"prompt": problem.instruct_prompt or problem.prompt, "entry_point": entry}


def program_prompt(problem: Problem, template: str = PROGRAM_TEMPLATE, style: str = "instruct") -> str:
    """What the model is asked for a program: the rendered program template, or (`style="complete"`)
    the problem's code prefix to continue."""
    if style == "complete":
        if not problem.code_prefix:
            raise ValueError(f"problem {problem.task_id!r} has no code prefix to continue; "
                             "use prompt_style=instruct for problems stated in prose")
        return problem.code_prefix
    return render(template, **prompt_fields(problem))


def test_prompt(problem: Problem, template: str = TEST_TEMPLATE) -> str:
    """What the model is asked for a test case: the rendered test template."""
    return render(template, **prompt_fields(problem))
