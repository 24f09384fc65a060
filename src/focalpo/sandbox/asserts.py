"""Rewrite assertion tests so that objects defined by the program cannot fake a pass.

`assert f(x) == 3` becomes `assert __focalpo_eq__(f(x), 3)`, any other comparison (`!=`, `<`,
`in`, chains ...) becomes `__focalpo_cmp__(("<",), [a, b])`, and a bare `assert f(x)` becomes
`assert __focalpo_truth__(f(x))`. The helpers run in the job (`focalpo.sandbox.guards`:
`_strict_eq`, `_strict_cmp`, `_strict_truth`): a comparison that an instance of a class the program
created would decide (also inside lists, tuples, sets and dicts) fails the assert, and so does
asking such an object for its truth. An object compared with itself is no such case, nor is
one that `in` finds by identity. Classes of libraries imported during the job are not the
program's (`guards._library_class`). `is` / `is not` are left alone: identity cannot be faked.
Inside a condition, comparisons nested in it (`all(f(x) == y for ...)`) are guarded the same
way, and the operands of arithmetic (`f() - 3.0`, `-f()`) and the arguments of builtins that turn
a value into a number or a truth (`abs`, `float`, `round`, `math.isclose` ..., see `CONVERTERS`)
go through `__focalpo_value__`, which fails the assert on a program object: otherwise its
`__sub__` returning 0.0 would pass `abs(f() - 3.0) < 1e-6`. Program objects handed to the
program's own functions (`f(Pair(1, 2)) == 3`) are left alone. Runs in the trusted parent before
the test is sent to the job. Not covered: callables outside `CONVERTERS` (a `__len__` or
`__str__` that lies about the object), methods called on program objects (`f().equals(x)`), and
code outside assert statements.

unittest modules (`rewrite_unittest`) get the same treatment for their assert statements and
for the arguments of their assertion calls (`self.assertTrue(f() == 3)`); the comparing
assertions themselves (`assertEqual`, `assertIn`, `assertAlmostEqual` ...) are guarded in the
job (`guards.guard_unittest`), which also refuses a verdict when the program changed unittest.

Only the assert conditions are replaced, in place, so every other line keeps its number and its
text: a traceback of the rewritten code points at the line the test's author wrote (the parent
shows the original line, see `focalpo.sandbox.feedback`).
"""

from __future__ import annotations

import ast
from functools import lru_cache

EQ_HELPER = "__focalpo_eq__"
CMP_HELPER = "__focalpo_cmp__"
TRUTH_HELPER = "__focalpo_truth__"
VALUE_HELPER = "__focalpo_value__"
# Callables (by name, also as `math.isclose`) whose numeric result or truth a program object's
# dunder methods would decide: their arguments must be plain values. Not `len`, `str` & co.:
# tests of class-based tasks rightly ask `len(stack) == 2` of the program's own objects. Nor
# `list`, `sorted` & co.: what they build still holds the program's objects, which `==` refuses.
CONVERTERS = frozenset({
    "abs", "round", "float", "int", "complex", "bool", "divmod", "pow", "sum", "min", "max",
    "isclose", "fabs", "floor", "ceil", "trunc", "sqrt", "isnan", "isinf", "isfinite",
})  # fmt: skip
_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}


class _Rewriter(ast.NodeTransformer):
    def __init__(self) -> None:
        self.spans: list[tuple[int, int, int, int]] = []  # where each rewritten condition was
        self.tests: list[ast.expr] = []  # and what replaced it

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        t = node.test
        self.spans.append((t.lineno, t.col_offset, t.end_lineno, t.end_col_offset))
        node.test = _GuardValues().visit(self._rewrite_test(t))
        self.tests.append(node.test)
        return node

    def _rewrite_test(self, test: ast.expr) -> ast.expr:
        if isinstance(test, ast.BoolOp):
            test.values = [self._rewrite_test(v) for v in test.values]
            return test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test.operand = self._rewrite_test(test.operand)
            return test
        if isinstance(test, ast.Compare):
            return _strict_compare(test)
        return ast.Call(func=ast.Name(TRUTH_HELPER, ast.Load()), args=[test], keywords=[])


def _strict_compare(test: ast.Compare) -> ast.expr:
    if len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        return ast.Call(func=ast.Name(EQ_HELPER, ast.Load()), args=[test.left, test.comparators[0]], keywords=[])
    if all(type(op) in _OPS for op in test.ops):
        ops = ast.Tuple([ast.Constant(_OPS[type(op)]) for op in test.ops], ast.Load())
        operands = ast.List([test.left, *test.comparators], ast.Load())
        return ast.Call(func=ast.Name(CMP_HELPER, ast.Load()), args=[ops, operands], keywords=[])
    return test  # `is` / `is not`: identity cannot be faked


def _guard(node: ast.expr) -> ast.expr:
    if isinstance(node, (ast.Constant, ast.Starred)):
        return node  # a literal is no program object; *args are left whole
    return ast.Call(func=ast.Name(VALUE_HELPER, ast.Load()), args=[node], keywords=[])


class _GuardValues(ast.NodeTransformer):
    """Operands of arithmetic and arguments of CONVERTERS must be plain values (see module doc)."""

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        # A comparison nested in the condition (`all(f(x) == y for ...)`) is guarded like the
        # condition's own: the top-level one was already turned into a helper call.
        self.generic_visit(node)
        return _strict_compare(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.BinOp:
        self.generic_visit(node)
        node.left, node.right = _guard(node.left), _guard(node.right)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.UnaryOp:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Not):  # `not x` is truth, which the helpers already judge
            node.operand = _guard(node.operand)
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if name in CONVERTERS:
            node.args = [_guard(a) for a in node.args]
        return node


class _UnittestRewriter(_Rewriter):
    """Also guards the comparisons, arithmetic and converters inside the arguments of unittest
    assertion calls (`self.assertTrue(f(x) == 3)`) as in an assert's condition. The arguments
    themselves are compared in the job: `assertEqual(a, b)` & co. refuse program objects there
    (`guards.guard_unittest`)."""

    def visit_Call(self, node: ast.Call) -> ast.Call:
        f = node.func
        if not (isinstance(f, ast.Attribute) and (f.attr.startswith("assert") or f.attr.startswith("fail"))):
            self.generic_visit(node)
            return node
        self.visit(f)
        # Arguments are not searched for further assertion calls: their spans would overlap.
        node.args = [self.visit(a) if isinstance(a, ast.Starred) else self._guard_argument(a) for a in node.args]
        for k in node.keywords:
            k.value = self.visit(k.value) if k.arg is None else self._guard_argument(k.value)  # **kwargs: left whole
        return node

    def _guard_argument(self, arg: ast.expr) -> ast.expr:
        """The argument with its comparisons, arithmetic and converters guarded; noted for
        splicing when that changed anything."""
        before = ast.dump(arg)
        span = (arg.lineno, arg.col_offset, arg.end_lineno, arg.end_col_offset)
        guarded = _GuardValues().visit(arg)
        if ast.dump(guarded) != before:
            self.spans.append(span)
            self.tests.append(guarded)
        return guarded


def _rewrite(code: str, rewriter) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    tree = rewriter.visit(tree)
    if not rewriter.spans:
        return code
    try:
        spliced = _splice(code, rewriter.spans, [ast.unparse(t) for t in rewriter.tests])
        if ast.dump(ast.parse(spliced)) == ast.dump(tree):
            return spliced
    except (SyntaxError, ValueError, TypeError):  # UnicodeError is a ValueError
        pass
    return ast.unparse(tree)


@lru_cache(maxsize=1024)
def rewrite_unittest(code: str) -> str:
    """A unittest module with its assert statements rewritten as by `rewrite_asserts`, and the
    comparisons, arithmetic and converters inside the arguments of its assertion calls guarded
    the same way (`self.assertTrue(f(x) == 3)`, `self.assertLess(abs(f() - 1.5), 1e-6)`)."""
    return _rewrite(code, _UnittestRewriter())


@lru_cache(maxsize=4096)
def rewrite_asserts(code: str) -> str:
    """The same test code with guarded `==`/truth checks in every assert; unparsable code is
    returned unchanged (it will fail as a SyntaxError inside the job, where it belongs).

    Line numbers are kept: each assert condition is replaced by its rewritten form in parentheses,
    padded with the newlines it spanned. The result must parse to exactly the rewritten tree;
    if it ever does not, the whole rewritten tree is unparsed instead (lines may then move).
    """
    return _rewrite(code, _Rewriter())


def _splice(code: str, spans: list[tuple], texts: list[str]) -> str:
    """`code` with each (line, col, end line, end col) span (UTF-8 byte columns, as in `ast`)
    replaced by "(text)" and the newlines the span covered."""
    data = code.encode()
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    pieces, pos = [], 0
    for (line, col, end_line, end_col), text in sorted(zip(spans, texts)):
        a, b = starts[line - 1] + col, starts[end_line - 1] + end_col
        pieces += [data[pos:a], f"({text}{chr(10) * (end_line - line)})".encode()]
        pos = b
    pieces.append(data[pos:])
    return b"".join(pieces).decode()
