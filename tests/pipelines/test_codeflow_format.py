"""CodeFlow answer format (focalpo.pipelines.codeflow_format): templates and answer parsing.

Run: .venv/bin/python -m pytest tests/pipelines/test_codeflow_format.py -q
"""

from __future__ import annotations

import pytest

from focalpo.pipelines.codeflow_format import (
    REASONS,
    FormatError,
    TeacherAnswer,
    format_error_feedback,
    parse_fix_answer,
    parse_teacher_answer,
)
from focalpo.prompts import FIX_TEMPLATE, TEACHER_TEMPLATE

FIB = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
TEST_FIB = "from fib import fib\nassert fib(10) == 55\n"
EXAMPLE = f"""<file>fib.py</file>
```python
{FIB}```
<file>test_fib.py</file>
```python
{TEST_FIB}```
<json>{{"solution_file": "fib.py", "test_file": "test_fib.py", "packages": []}}</json>
"""


def reason_of(text: str) -> str:
    with pytest.raises(FormatError) as e:
        parse_teacher_answer(text)
    assert e.value.reason in REASONS and isinstance(e.value, ValueError)
    return e.value.reason


# --------------------------------------------------------------------------------------------------
# Templates


def test_templates_fill_by_replace_and_keep_braces():
    prompt = TEACHER_TEMPLATE.replace("{instruction}", "Write fib(n).")
    assert "Task:\nWrite fib(n).\n\nWrite two files" in prompt
    assert '<json>{"solution_file": "NAME.py", "test_file": "test_NAME.py", "packages": []}</json>' in prompt
    follow = FIX_TEMPLATE.replace("{feedback}", "assert_0 failed: {x}")
    assert follow.startswith("Running your tests against your solution failed:\n\nassert_0 failed: {x}\n\nFix")
    assert "{" not in FIX_TEMPLATE.replace("{feedback}", "")
    error = FormatError("no_code", "the answer has no fenced code block")
    assert format_error_feedback(error).startswith(
        "Your answer could not be used (no_code: the answer has no fenced code block). Answer again"
    )


# --------------------------------------------------------------------------------------------------
# parse_teacher_answer


def test_parse_example():
    assert parse_teacher_answer(EXAMPLE) == TeacherAnswer("fib.py", FIB, "test_fib.py", TEST_FIB, ())
    assert parse_teacher_answer(EXAMPLE).module_name == "fib"


def test_parse_prose_crlf_paths_and_packages():
    text = (
        "Sure! Here is the solution.\n\n**File 1**\n< file > src/fib.py </file>\n\n```py\n"
        + FIB
        + "```\nThe tests:\n<file>tests\\test_fib.py</file>\n```python\n"
        + TEST_FIB
        + '```\n<json>\n{"solution_file": "src/fib.py", "test_file": "tests/test_fib.py",'
        + ' "packages": ["numpy", 3]}\n</json>\nHope it helps!'
    ).replace("\n", "\r\n")
    assert parse_teacher_answer(text) == TeacherAnswer("fib.py", FIB, "test_fib.py", TEST_FIB, ("numpy",))


def test_parse_missing_json_infers_roles():
    # Test file first, recognised by its name.
    text = f"<file>test_fib.py</file>\n```python\n{TEST_FIB}```\n<file>fib.py</file>\n```python\n{FIB}```\n"
    assert parse_teacher_answer(text) == TeacherAnswer("fib.py", FIB, "test_fib.py", TEST_FIB, ())
    # No test-like name: the file that imports the other is the test file.
    text = f"<file>checks.py</file>\n```python\n{TEST_FIB}```\n<file>fib.py</file>\n```python\n{FIB}```\n"
    assert parse_teacher_answer(text) == TeacherAnswer("fib.py", FIB, "checks.py", TEST_FIB, ())
    # JSON naming files that are not there: inferred too.
    text = EXAMPLE.replace('"fib.py", "test_file": "test_fib.py"', '"solution.py", "test_file": "test_solution.py"')
    assert parse_teacher_answer(text).solution_name == "fib.py"


def test_parse_unclosed_final_fence_and_untagged_fence():
    text = f"<file>fib.py</file>\n```\n{FIB}```\n<file>test_fib.py</file>\n```python\n{TEST_FIB}``"
    assert parse_teacher_answer(text) == TeacherAnswer("fib.py", FIB, "test_fib.py", TEST_FIB, ())


def test_parse_malformed_json():
    bad = EXAMPLE.replace('"packages": []}', '"packages": [}')
    assert parse_teacher_answer(bad) == TeacherAnswer("fib.py", FIB, "test_fib.py", TEST_FIB, ())
    # Malformed AND roles not inferable (no test-like name, no import): bad_json.
    text = "<file>a.py</file>\n```python\nx = 1\n```\n<file>b.py</file>\n```python\ny = 2\n```\n<json>{oops</json>"
    assert reason_of(text) == "bad_json"
    assert reason_of(text.replace("<json>{oops</json>", "")) == "no_solution_file"


def test_parse_failures():
    assert reason_of("I cannot do this.") == "no_code"
    assert reason_of("<file>fib.py</file>\nno fence here") == "no_code"
    assert reason_of(f"```python\n{FIB}```") == "no_solution_file"
    assert reason_of(f"<file>fib.py</file>\n```python\n{FIB}```") == "missing_test_file"
    assert reason_of(EXAMPLE.replace("fib.py", "my-fib.py")) == "bad_file_name"
    assert reason_of(EXAMPLE.replace("fib.py", "class.py")) == "bad_file_name"
    assert reason_of(EXAMPLE.replace("    return a\n", "    return a +\n")) == "unparsable_solution"
    assert reason_of(EXAMPLE.replace("assert fib(10) == 55", "assert fib(10) ==")) == "unparsable_test"
    with pytest.raises(ValueError, match="unknown FormatError reason"):
        FormatError("nope", "x")


def test_parse_fix_answer():
    fixed = "def fib(n):\n    return n\n"
    assert parse_fix_answer(f"Fixed:\n<file>fib.py</file>\n```python\n{fixed}```\n", "fib.py") == fixed
    # The test file repeated anyway is ignored; a renamed single solution file is accepted.
    both = f"<file>fib.py</file>\n```python\n{fixed}```\n<file>test_fib.py</file>\n```python\n{TEST_FIB}```"
    assert parse_fix_answer(both, "fib.py") == fixed
    assert parse_fix_answer(both.replace("<file>fib.py", "<file>fib_v2.py"), "fib.py") == fixed
    assert parse_fix_answer(f"Here:\r\n```python\r\n{fixed}```", "fib.py") == fixed
    for text, reason in [
        ("no code", "no_code"),
        (f"```python\n{fixed}```\n```python\nprint(fib(3))\n```", "no_solution_file"),
        (f"<file>test_fib.py</file>\n```python\n{TEST_FIB}```", "no_solution_file"),
        ("<file>fib.py</file>\n```python\ndef fib(n:\n```", "unparsable_solution"),
    ]:
        with pytest.raises(FormatError) as e:
            parse_fix_answer(text, "fib.py")
        assert e.value.reason == reason
