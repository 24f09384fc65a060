"""Rewrite assertion tests so that objects defined by the program cannot fake a pass.

`assert f(x) == 3` becomes `assert __focalpo_eq__(f(x), 3)`, any other comparison (`<`, `in`,
chains ...) becomes `__focalpo_cmp__(("<",), [a, b])`, and a bare `assert f(x)` becomes
`assert __focalpo_truth__(f(x))`. The helpers live in the job harness (`_job._strict_eq`,
`_job._strict_cmp`, `_job._strict_truth`): a comparison that involves an instance of a class the
program created (also inside lists, tuples, sets and dicts) is false, and such an object's truth
decides nothing. `is` / `is not` are left alone: identity cannot be faked. Runs in the trusted
parent before the test is sent to the job. Not covered: arithmetic on program objects
(`abs(f() - 3.0) < 1e-6` with a `__sub__` that returns 0.0).
"""

from __future__ import annotations

import ast
from functools import lru_cache

EQ_HELPER = "__focalpo_eq__"
CMP_HELPER = "__focalpo_cmp__"
TRUTH_HELPER = "__focalpo_truth__"
_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}


class _Rewriter(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        node.test = self._rewrite_test(node.test)
        return node

    def _rewrite_test(self, test: ast.expr) -> ast.expr:
        if isinstance(test, ast.BoolOp):
            test.values = [self._rewrite_test(v) for v in test.values]
            return test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test.operand = self._rewrite_test(test.operand)
            return test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
            call = ast.Call(func=ast.Name(EQ_HELPER, ast.Load()), args=[test.left, test.comparators[0]], keywords=[])
            if isinstance(test.ops[0], ast.NotEq):
                return ast.UnaryOp(op=ast.Not(), operand=call)
            return call
        if isinstance(test, ast.Compare) and all(type(op) in _OPS for op in test.ops):
            ops = ast.Tuple([ast.Constant(_OPS[type(op)]) for op in test.ops], ast.Load())
            operands = ast.List([test.left, *test.comparators], ast.Load())
            return ast.Call(func=ast.Name(CMP_HELPER, ast.Load()), args=[ops, operands], keywords=[])
        if isinstance(test, ast.Compare):
            return test  # `is` / `is not`: identity cannot be faked
        return ast.Call(func=ast.Name(TRUTH_HELPER, ast.Load()), args=[test], keywords=[])


@lru_cache(maxsize=4096)
def rewrite_asserts(code: str) -> str:
    """The same test code with guarded `==`/truth checks in every assert; unparsable code is
    returned unchanged (it will fail as a SyntaxError inside the job, where it belongs)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    tree = ast.fix_missing_locations(_Rewriter().visit(tree))
    return ast.unparse(tree)
