"""CodeFlow answer format (Target-DPO, arXiv 2503.02783): parsing the teacher's answers.

A teacher answers a programming instruction with a solution file and a test file, each written as
`<file>name.py</file>` plus a fenced python block, then `<json>{"solution_file": ..., "test_file":
..., "packages": [...]}</json>`. The solution runs against the tests in the sandbox; on failure the
error report goes back to the model, which returns a corrected solution file (at most 5 rounds).

    prompt = render(TEACHER_TEMPLATE, instruction=instruction)           # focalpo.prompts
    answer = parse_teacher_answer(teacher(prompt))      # FormatError(reason, message) if unusable
    tests, skipped = test_file_to_tests(answer.test_code, answer.module_name)   # codeflow_tests
    result = execute(answer.solution_code, tests)       # program registered as answer.module_name
    if not result.passed:
        fix = render(FIX_TEMPLATE, feedback=format_feedback(result, tests))
        code = parse_fix_answer(teacher(fix), answer.solution_name)   # FormatError: format_error_feedback

The templates (`focalpo.prompts`) ask for this format. The test file is fixed after the first answer: FIX_TEMPLATE asks for the solution file only, and
`parse_fix_answer` ignores any other file. Why: a preference pair contrasts a failing and a passing
*solution* judged by the same tests; a model allowed to edit the tests could "fix" them instead.
A wrong test makes the sample never pass, and it is dropped, as the paper drops such samples.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from dataclasses import dataclass

from focalpo.extract import PYTHON_TAGS, extract_code, fenced_blocks

# Why an answer is unusable; `FormatError.reason` is one of these (counted in the pipeline stats).
REASONS = (
    "no_code",  # no fenced code block at all
    "no_solution_file",  # no tagged file (or, in a fix answer, no single block) is the solution
    "missing_test_file",  # a solution but no test file
    "bad_file_name",  # a chosen file name is not `module.py` (or no tag names a .py file)
    "bad_json",  # the <json> block is malformed and the roles of the files cannot be inferred
    "unparsable_solution",
    "unparsable_test",
)

_FILE_TAG = re.compile(r"<\s*file\s*>\s*([^<\n]*?)\s*(?:<\s*/\s*file\s*>|\n)", re.IGNORECASE)
_JSON_TAG = re.compile(r"<\s*json\s*>(.*?)(?:<\s*/\s*json\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_MODULE_FILE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.py")


class FormatError(ValueError):
    """An unusable teacher answer; `reason` is one of REASONS."""

    def __init__(self, reason: str, message: str):
        if reason not in REASONS:
            raise ValueError(f"unknown FormatError reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class TeacherAnswer:
    """The two files of a parsed teacher answer (file names are base names, `module.py`)."""

    solution_name: str  # "fib.py"
    solution_code: str
    test_name: str
    test_code: str
    packages: tuple[str, ...] = ()

    @property
    def module_name(self) -> str:
        return self.solution_name[: -len(".py")]


# --------------------------------------------------------------------------------------------------
# Parsing answers


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _code_blocks(text: str) -> list[str]:
    return [b.code for b in fenced_blocks(text) if (b.tag in PYTHON_TAGS or not b.tag) and b.code.strip()]


def _basename(raw: str) -> str:
    return raw.strip().strip("`'\"*").strip().replace("\\", "/").rsplit("/", 1)[-1]


def _tagged_files(text: str) -> dict[str, str]:
    """name -> code of the first python block after each `<file>` tag (a repeated name: the last)."""
    tags = list(_FILE_TAG.finditer(text))
    json_starts = [m.start() for m in _JSON_TAG.finditer(text)]
    files: dict[str, str] = {}
    for k, tag in enumerate(tags):
        end = min([tags[k + 1].start() if k + 1 < len(tags) else len(text)] + [j for j in json_starts if j > tag.end()])
        blocks = _code_blocks(text[tag.end() : end])
        if blocks:
            files[_basename(tag.group(1))] = blocks[0]
    return files


def _json_meta(text: str) -> tuple[dict, str]:
    """(the <json> object or {}, why it is malformed or "")."""
    m = _JSON_TAG.search(text)
    if m is None:
        return {}, ""
    raw = m.group(1).strip()
    if "```" in raw or "~~~" in raw:
        raw = extract_code(raw, language="json")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        return {}, f"<json> block is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
    if not isinstance(meta, dict):
        return {}, f"<json> block holds a {type(meta).__name__}, not an object"
    return meta, ""


def _stem(name: str) -> str:
    return name[: -len(".py")] if name.endswith(".py") else name


def _is_test_name(name: str) -> bool:
    stem = _stem(name)
    return stem.startswith("test_") or stem.endswith("_test") or stem in ("test", "tests")


def _imports(code: str) -> set[str]:
    """Top-level package names that `code` imports (`from . import x` counts as x)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
    return out


def _infer_test(files: dict[str, str], solution: str | None) -> str | None:
    """Test-named files importing the solution (or another file) first, then any test-named file,
    then any file importing another; the first in answer order wins."""
    others = [n for n in files if n != solution]

    def imports_other(n: str) -> bool:
        targets = [solution] if solution else [m for m in files if m != n]
        return bool(_imports(files[n]) & {_stem(t) for t in targets})

    named = [n for n in others if _is_test_name(n)]
    for pool in ([n for n in named if imports_other(n)], named, [n for n in others if imports_other(n)]):
        if pool:
            return pool[0]
    return None


def _infer_solution(files: dict[str, str], test: str | None) -> str | None:
    others = [n for n in files if n != test]
    imported = [n for n in others if test and _stem(n) in _imports(files[test])]
    plain = [n for n in others if not _is_test_name(n)]
    return imported[0] if imported else plain[0] if len(plain) == 1 else None


def _file_roles(files: dict[str, str], meta: dict) -> tuple[str | None, str | None]:
    def named(key: str) -> str | None:
        value = meta.get(key)
        return _basename(value) if isinstance(value, str) and _basename(value) in files else None

    solution, test = named("solution_file"), named("test_file")
    if test == solution:
        test = None
    test = test or _infer_test(files, solution)
    return solution or _infer_solution(files, test), test


def _check_name(name: str) -> None:
    if not _MODULE_FILE.fullmatch(name) or keyword.iskeyword(_stem(name)):
        raise FormatError("bad_file_name", f"{name!r} is not an importable module file name (module.py)")


def _check_parses(code: str, reason: str, name: str) -> None:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError) as e:
        line = f" (line {e.lineno})" if getattr(e, "lineno", None) else ""
        raise FormatError(reason, f"{name} does not parse: {getattr(e, 'msg', e)}{line}") from None


def parse_teacher_answer(text: str) -> TeacherAnswer:
    """The solution and test files of a teacher answer; FormatError when it is unusable.

    Roles come from the <json> block when it names tagged files, else they are inferred: the test
    file is named `test_*.py` / `*_test.py` or imports the other file. Tag paths (`src/fib.py`)
    are reduced to their base name; text outside tags and fences is ignored.
    """
    text = _normalise(text)
    files = _tagged_files(text)
    if not files:
        if not _code_blocks(text):
            raise FormatError("no_code", "the answer has no fenced code block")
        raise FormatError("no_solution_file", "no <file>name.py</file> tag followed by a code block")
    py = {n: c for n, c in files.items() if n.endswith(".py")}
    if not py:
        raise FormatError("bad_file_name", f"no tagged file name ends in .py: {sorted(files)}")
    meta, json_error = _json_meta(text)
    solution, test = _file_roles(py, meta)
    if solution is None or test is None:
        if json_error:
            raise FormatError("bad_json", json_error)
        if solution is None:
            raise FormatError("no_solution_file", f"cannot tell which file is the solution among {sorted(py)}")
        raise FormatError("missing_test_file", f"no test file besides {solution} among {sorted(py)}")
    for name in (solution, test):
        _check_name(name)
    _check_parses(py[solution], "unparsable_solution", solution)
    _check_parses(py[test], "unparsable_test", test)
    packages = meta.get("packages")
    packages = tuple(p for p in packages if isinstance(p, str)) if isinstance(packages, list) else ()
    return TeacherAnswer(solution, py[solution], test, py[test], packages)


def parse_fix_answer(text: str, expected_name: str) -> str:
    """The corrected solution of a follow-up answer: the block tagged `expected_name` (or the only
    tagged non-test file), else the only untagged python block. Test files are ignored."""
    text = _normalise(text)
    files = _tagged_files(text)
    plain = [n for n in files if not _is_test_name(n)]
    if expected_name in files:
        code = files[expected_name]
    elif files:
        if len(plain) != 1:
            raise FormatError("no_solution_file", f"expected <file>{expected_name}</file>, found {sorted(files)}")
        code = files[plain[0]]
    else:
        blocks = _code_blocks(text)
        if not blocks:
            raise FormatError("no_code", "the answer has no fenced code block")
        if len(blocks) > 1:
            raise FormatError("no_solution_file", f"{len(blocks)} untagged blocks; expected one for {expected_name}")
        code = blocks[0]
    _check_parses(code, "unparsable_solution", expected_name)
    return code


def format_error_feedback(error: FormatError) -> str:
    """The follow-up turn after a fix answer that could not be used (`parse_fix_answer` failed)."""
    return (f"Your answer could not be used ({error}). Answer again with the complete corrected solution file"
            " only: its <file> tag with the same name as before, then one fenced python block.")
