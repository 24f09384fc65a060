"""CodeFlow tests and feedback: a model-written test file -> one sandbox test per check; failures -> a report.

    tests, skipped = test_file_to_tests(test_code, "fib")   # asserts, pytest functions, unittest methods
    result = execute(solution, tests, module="fib")
    feedback = format_feedback(result, tests)                # "" when every test passed

`test_file_to_tests` keeps verdicts per check: top-level asserts (and statements holding asserts),
pytest-style `test_*` functions and classes, and unittest methods each become a test; what cannot
run as is (parametrized or decorated pytest tests, async tests, skipped methods) is listed in
`skipped`. The setup each test runs first is the test file without its checks, its `__main__`
block and any pasted copy of the solution, blanked rather than cut so line numbers still match.
`format_feedback` is the error report of Target-DPO's debugging loop (arXiv 2503.02783, §3.1):
the failing tests with their code and the first traceback's tail, within `max_chars`.
"""

from __future__ import annotations

import ast
import textwrap
from typing import NamedTuple, Sequence

from focalpo.sandbox.types import AssertTest, ExecResult, Status, TestCase, UnittestTest, Verdict

MAX_LISTED = 3  # failing tests shown in full by format_feedback


# --------------------------------------------------------------------------------------------------
# Test file -> sandbox tests


class ConvertedTests(NamedTuple):
    """What `test_file_to_tests` returns: `tests, skipped = test_file_to_tests(...)`.

    `tests`: one sandbox test per check, in file order. `skipped`: names of the test functions and
    methods not converted: pytest tests with parameters (fixtures, `@pytest.mark.parametrize`),
    decorators or class hooks, async tests, `@unittest.skip...` methods.
    """

    tests: list[TestCase]
    skipped: list[str]


def _is_main_guard(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1):
        return False
    sides = sorted(ast.unparse(s) for s in (node.test.left, *node.test.comparators))
    return isinstance(node.test.ops[0], ast.Eq) and sides == ["'__main__'", "__name__"]  # unparse quotes with '


def _is_testcase_class(node: ast.stmt) -> bool:
    """A class based on `TestCase` or `<anything>.TestCase`, directly."""
    bases = getattr(node, "bases", []) if isinstance(node, ast.ClassDef) else []
    return any(getattr(b, "id", getattr(b, "attr", "")) == "TestCase" for b in bases)


def _skip_marked(*nodes: ast.stmt) -> bool:
    decorators = [ast.unparse(d) for n in nodes for d in getattr(n, "decorator_list", [])]
    return any("skip" in d or "expectedFailure" in d for d in decorators)


def _runnable_pytest(fn: ast.FunctionDef | ast.AsyncFunctionDef, n_args: int = 0) -> bool:
    """A plain function without decorators taking exactly `n_args` positional parameters (`self`)."""
    a = fn.args
    return isinstance(fn, ast.FunctionDef) and not fn.decorator_list and len(a.posonlyargs + a.args) == n_args and not (
        a.vararg or a.kwonlyargs or a.kwarg)  # fmt: skip


def _class_tests(node: ast.ClassDef, setup: str, time_limit: float | None, skipped: list[str]) -> list[TestCase]:
    """unittest: `test*` methods of a TestCase class; pytest: of a `Test*` class without `__init__`
    or setup/teardown hooks (those classes are skipped whole), each run as `Class().test_x()`."""
    methods = [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    tests: list[TestCase] = []
    if _is_testcase_class(node):
        for m in (m for m in methods if m.name.startswith("test")):
            name = f"{node.name}.{m.name}"
            if isinstance(m, ast.AsyncFunctionDef) or _skip_marked(node, m):
                skipped.append(name)
            else:
                tests.append(UnittestTest(name, setup, name, time_limit))
    elif node.name.startswith("Test"):
        hooks = any(m.name == "__init__" or m.name.startswith(("setup", "teardown")) for m in methods)
        for m in (m for m in methods if m.name.startswith("test")):
            name = f"{node.name}.{m.name}"
            if hooks or node.decorator_list or not _runnable_pytest(m, n_args=1):
                skipped.append(name)
            else:
                tests.append(AssertTest(name, f"{node.name}().{m.name}()", setup, time_limit))
    return tests


def _called_name(node: ast.stmt) -> str:
    """`f` for a statement `f(...)`, "unittest.main" for `unittest.main(...)`, else ""."""
    func = node.value.func if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def _first_line(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _statement_source(code: str, node: ast.stmt) -> str:
    """The statement's text (decorators included), dedented; `ast.unparse` if that does not parse."""
    text = textwrap.dedent("\n".join(code.split("\n")[_first_line(node) - 1 : node.end_lineno]))
    try:
        ast.parse(text)
    except SyntaxError:
        return ast.unparse(node)
    return text


def _without(code: str, tree: ast.Module, removed: list[ast.stmt]) -> str:
    """`code` with the lines of the top-level statements `removed` blanked (line numbers stay those
    of the test file); `ast.unparse` of the rest when a removed statement shares a line."""
    gone = {i for n in removed for i in range(_first_line(n), n.end_lineno + 1)}
    kept = [n for n in tree.body if all(n is not r for r in removed)]
    if any(i in gone for n in kept for i in range(_first_line(n), n.end_lineno + 1)):
        return ast.unparse(ast.Module(kept, [])) + "\n" if kept else ""
    text = "\n".join("" if i in gone else line for i, line in enumerate(code.split("\n"), start=1)).rstrip()
    return text + "\n" if text.strip() else ""


def _pasted_copies(tree: ast.Module, module_name: str) -> list[ast.stmt]:
    """Top-level definitions of names the file imports from `module_name`: a copy of the solution
    pasted into the test file, which would shadow the program's own."""
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == module_name
                for a in n.names}  # fmt: skip
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n for n in tree.body if isinstance(n, definitions) and n.name in imported]


def _statement_roles(tree: ast.Module):
    """(role(statement) -> "check" | "drop" (runs collected tests) | "keep" (setup), test function names)."""
    fns = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    test_fns = {n.name for n in fns if n.name.startswith("test")}
    assert_fns = {n.name for n in fns if n.name not in test_fns and any(isinstance(x, ast.Assert) for x in ast.walk(n))}

    def role(node: ast.stmt) -> str:
        called = _called_name(node)
        if called in test_fns or called in ("unittest.main", "pytest.main"):
            return "drop"
        definition = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        asserts = not definition and any(isinstance(x, ast.Assert) for x in ast.walk(node))
        return "check" if called in assert_fns or asserts else "keep"

    return role, test_fns


def test_file_to_tests(test_code: str, module_name: str, *, time_limit: float | None = None) -> ConvertedTests:
    """The sandbox tests of a test file, one per check, in file order ([] when it has none), and
    the names of the tests it skipped (`ConvertedTests`); ValueError if it does not parse.

    - unittest: each `test*` method of a class based on `TestCase` -> UnittestTest "Class.test_x";
    - pytest: each top-level `def test*():` without parameters -> AssertTest "test_x", code "test_x()",
      and each `test*(self)` method of a plain `Test*` class -> AssertTest "Class.test_x";
    - checks: each top-level or `if __name__ == "__main__":` assert, statement with an assert inside
      (a loop over cases) or call of a function of the file that asserts -> AssertTest "assert_{i}"
      (i from 0), code: that statement.
    The setup of every AssertTest, and the unittest module, is the file without checks, main block,
    calls of its test functions, `unittest.main()` and definitions of names it imports from
    `module_name` (line numbers kept), plus the main block's other non-call statements (`x = f(5)`).
    Imports stay: the sandbox makes the program importable as `module_name`.
    """
    code = test_code.replace("\r\n", "\n").replace("\r", "\n")
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise ValueError(f"test file does not parse: {e.msg} (line {e.lineno})") from None
    role, test_fns = _statement_roles(tree)
    main_body = [s for n in tree.body if _is_main_guard(n) for s in n.body]
    flat = [s for n in tree.body for s in (n.body if _is_main_guard(n) else [n])]
    main_keep = [n for n in main_body if role(n) == "keep" and not isinstance(n, ast.Expr)]
    copies = _pasted_copies(tree, module_name)
    removed = [n for n in tree.body if _is_main_guard(n) or role(n) != "keep" or any(n is c for c in copies)]
    setup = _without(code, tree, removed) + "".join(_statement_source(code, n) + "\n" for n in main_keep)
    tests: list[TestCase] = []
    skipped: list[str] = []
    n_checks = 0
    for node in flat:
        if role(node) == "check":
            tests.append(AssertTest(f"assert_{n_checks}", _statement_source(code, node), setup, time_limit))
            n_checks += 1
        elif isinstance(node, ast.ClassDef):
            tests += _class_tests(node, setup, time_limit, skipped)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in test_fns:
            if _runnable_pytest(node):
                tests.append(AssertTest(node.name, f"{node.name}()", setup, time_limit))
            else:
                skipped.append(node.name)
    unique: dict[str, TestCase] = {}
    for t in tests:  # a test defined twice runs once (Python keeps the last definition)
        unique.setdefault(t.name, t)
    return ConvertedTests(list(unique.values()), skipped)


test_file_to_tests.__test__ = False  # not a pytest test when imported into a test module


# --------------------------------------------------------------------------------------------------
# Error feedback


def _clip(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: max(0, n - 3)] + "..."


def _method_source(module: str, method: str) -> str:
    """The source of `method` ("Class.test_x") in `module`, dedented; "" if not found."""
    cls_name, _, name = method.rpartition(".")
    try:
        tree = ast.parse(module)
    except SyntaxError:
        return ""
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name]
    methods = [m for c in classes for m in c.body if isinstance(m, ast.FunctionDef) and m.name == name]
    return _statement_source(module, methods[-1]) if methods else ""


def _test_source(test: TestCase | None) -> str:
    """The test as the model wrote it: the check, the test function, or the test method."""
    if isinstance(test, UnittestTest):
        return _method_source(test.module, test.method)
    if not isinstance(test, AssertTest):
        return ""
    if "." in test.name and test.code == "{}().{}()".format(*test.name.split(".", 1)):
        return _method_source(test.setup, test.name) or test.code
    try:
        body, setup = ast.parse(test.code).body, ast.parse(test.setup)
    except SyntaxError:
        return test.code
    called = _called_name(body[0]) if len(body) == 1 else ""
    fn = next((n for n in setup.body if isinstance(n, ast.FunctionDef) and n.name == called), None)
    return _statement_source(test.setup, fn) if fn else test.code


def _failure_block(verdict: Verdict, test: TestCase | None, max_lines: int = 15) -> str:
    """'FAILED name (status): message' and the test's code, indented, at most `max_lines` of it."""
    message = f": {_clip(verdict.message, 300)}" if verdict.message.strip() else ""
    source = _test_source(test).rstrip()
    lines = source.split("\n") if source else []
    lines = lines[:max_lines] + ["..."] if len(lines) > max_lines else lines
    return "\n".join([f"FAILED {verdict.name} ({verdict.status}){message}"] + [f"    {x}" if x else "" for x in lines])


def _tail_lines(traceback: str, room: int) -> str:
    """The traceback if it fits in `room`, else its "Traceback ..." line, "  ..." and the last lines
    that fit (the last line clipped when it alone does not); "" when too little room."""
    traceback = traceback.strip("\n")
    if len(traceback) <= room:
        return traceback
    lines = traceback.split("\n")
    kept = [lines[0], "  ..."] if lines[0].startswith("Traceback") else ["  ..."]
    size = len("\n".join(kept))
    tail: list[str] = []
    for line in reversed(lines[1:]):
        if size + 1 + len(line) > room:
            break
        tail.insert(0, line)
        size += 1 + len(line)
    while len(tail) > 1 and any(x.startswith("  File ") for x in tail) and not tail[0].startswith("  File "):
        tail.pop(0)  # start at a frame, not at the code line of a frame cut off
    if not tail and room - size > 20:
        tail = [_clip(lines[-1], room - size - 1)]
    return "\n".join(kept + tail) if tail else ""


def _head_lines(text: str, limit: int, marker: str = "\n[... truncated]") -> str:
    """The first whole lines of `text` that fit in `limit` with `marker` (characters if none fits)."""
    out = ""
    for line in text.split("\n"):
        if len(out) + 1 + len(line) + len(marker) > limit:
            break
        out = f"{out}\n{line}" if out else line
    out = out or text[: max(0, limit - len(marker))]
    return (out + marker)[:limit]


def _fit(parts: list[str], traceback: str, more: int, max_chars: int) -> str:
    """Join summary, failure blocks, traceback (after the first block) and the "more" line within
    `max_chars`: drop blocks from the end, then shorten the traceback, then cut the head."""
    parts = list(parts)

    def text(tb: str) -> str:
        more_line = [f"... and {more} more failing test{'s' if more > 1 else ''}."] if more else []
        return "\n\n".join(parts[:2] + ([tb] if tb else []) + parts[2:] + more_line)

    while len(text("")) > max_chars and len(parts) > 2:
        parts.pop()
        more += 1
    if len(text("")) > max_chars:
        return _head_lines(text(""), max_chars)
    return text(_tail_lines(traceback, max_chars - len(text("")) - 2))


def format_feedback(result: ExecResult, tests: Sequence[TestCase], *, max_chars: int = 1500) -> str:
    """The error report fed back to the model: "" when every test passed, at most `max_chars` long.

    A load error: the error and the tail of its traceback. Otherwise "k of n tests failed.", then
    the first MAX_LISTED failures (name, status, message, the test's code from `tests`) with the
    traceback tail of the first, then "... and N more failing tests.".
    """
    if result.load_error:
        head = f"The solution failed to load: {_clip(result.load_error, 300)}"
        return _fit([head], getattr(result, "load_traceback", ""), 0, max_chars)
    failed = [v for v in result.verdicts if not v.passed and v.status != Status.NOT_RUN]
    if not failed:
        not_run = sum(v.status == Status.NOT_RUN for v in result.verdicts)
        return f"{not_run} of {len(result.verdicts)} tests did not run." if not_run else ""
    by_name = {t.name: t for t in tests}
    blocks = [_failure_block(v, by_name.get(v.name)) for v in failed[:MAX_LISTED]]
    summary = f"{len(failed)} of {len(result.verdicts)} tests failed."
    return _fit([summary] + blocks, getattr(failed[0], "traceback", ""), len(failed) - len(blocks), max_chars)
