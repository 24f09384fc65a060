"""What may decide an assertion that runs next to the program (inside the sandboxed job).

Assert and unittest tests can only run in the job, beside the program's objects. The job's
harness (`focalpo.sandbox._job`) runs them with the helpers here, which refuse to let an object of
a class the program created decide a comparison, a truth test or arithmetic (rewritten asserts
call `HELPERS`, see `focalpo.sandbox.asserts`; unittest's comparing assertions are wrapped by
`guard_unittest`), and which notice when the program replaced unittest's machinery or a builtin
(`unittest_changed`, `checkers_changed`).

Which classes are the program's: every class that existed when the zygote was ready is trusted
(`snapshot_types`), and so is a class a library module imported during the job creates
(`_library_class`: its module is a file under the installation's library directories and holds
it). Everything else, the program's own classes first, is not. Imported by the zygote before any
program runs: its builtins (`focalpo.sandbox._builtins`) and the descriptors bound below are the
real ones, whatever a program replaces later.

Not a security boundary against a program that sets out to forge all this (see the isolation
notes in `focalpo.sandbox`): it stops the natural ways of faking a pass.

One file (~460 lines): the operator, unittest and checker guards share one notion of "the
program's object" and run under the harness's own builtins; split, each part would have to repeat it.
"""

from __future__ import annotations

from focalpo.sandbox._builtins import BUILTINS as __builtins__  # noqa: F401 - a program's patches never reach the harness

import builtins
import functools
import os
import sys
import types
import unittest
import unittest.case as _ut_case
import unittest.result as _ut_result
import unittest.suite as _ut_suite

# ids of every class that existed before any program ran (ids: a metaclass cannot fake them the
# way it can fake __hash__/__eq__ for a set lookup); the classes are kept alive with them.
_KNOWN_TYPE_IDS: frozenset = frozenset()
_KNOWN_TYPES: list = []
# The installation's library directories (stdlib, site-packages), found with the snapshot.
_LIBRARY_ROOTS: tuple = ()
# Library classes whose instances exist to compare equal to anything: never trusted.
_IMPERSONATORS = frozenset({("unittest.mock", "_ANY")})
_JUDGED: dict = {}  # id -> (class, foreign?) for classes first seen during this job
_TEST_MODULES: list = []  # this job's unittest modules: the classes they define are trusted
_PROGRAM_NAMESPACE: dict = {}  # the program module's namespace (set_program_namespace)
_CONTAINERS = (list, tuple, set, frozenset)
_COMPARE = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}  # fmt: skip
# Bound before any program runs: what a class or module really holds, whatever it defines.
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_module_dict = types.ModuleType.__dict__["__dict__"].__get__
_Module = types.ModuleType
_modules = sys.modules
_MISSING = object()


def snapshot_types() -> None:
    """Remember every class that exists now (called by the zygote after preloading, before any
    job): a class missing from the snapshot was created by the program or by a module imported
    during the job (see `_library_class`)."""
    global _KNOWN_TYPE_IDS, _KNOWN_TYPES, _LIBRARY_ROOTS
    seen: dict[int, type] = {}
    stack = [object]
    while stack:
        cls = stack.pop()
        if id(cls) in seen:
            continue
        seen[id(cls)] = cls
        stack.extend(type.__subclasses__(cls) if cls is not type else type.__subclasses__(type))
    _KNOWN_TYPES = [c for c in seen.values() if (_type_module(c), _type_qualname(c)) not in _IMPERSONATORS]
    _KNOWN_TYPE_IDS = frozenset(map(id, _KNOWN_TYPES))
    _LIBRARY_ROOTS = _library_roots()


def _library_roots() -> tuple:
    import site
    import sysconfig

    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages())
    roots = set()
    for path in filter(None, paths):
        if os.path.isdir(path):
            roots.update((os.path.join(path, ""), os.path.join(os.path.realpath(path), "")))
    return tuple(sorted(roots))


def _foreign_type(t) -> bool:
    """Is t a class the program created? Not if it existed before the program ran, nor if a
    library module imported during the job created it (`_library_class`)."""
    if id(t) in _KNOWN_TYPE_IDS:
        return False
    judged = _JUDGED.get(id(t))
    if judged is not None and judged[0] is t:
        return judged[1]
    foreign = not _library_class(t)
    _JUDGED[id(t)] = (t, foreign)  # the class is kept alive: its id cannot be reused
    return foreign


def _library_class(t) -> bool:
    """A class first created during the job by a library (pandas imported on demand, pyplot's
    BarContainer) or by the job's unittest module: its `__module__` names a loaded module that is
    a file under the installation's library directories (or the test module) and that holds the
    class under its qualified name. A class the program defines carries the program's module
    name; `__module__ = "json"` alone does not make `json` hold it. A program can still forge all
    of this on purpose (see the isolation notes in `focalpo.sandbox`)."""
    try:
        name, qualname = _type_module(t), _type_qualname(t)
        if type(name) is not str or type(qualname) is not str or (name, qualname) in _IMPERSONATORS:
            return False
        module = _modules.get(name)
        test_module = any(m is module for m in _TEST_MODULES)  # maybe a ModuleType subclass: _job._shared_module
        if type(module) is not _Module and not test_module:
            return False
        namespace = _module_dict(module)
        if test_module:
            top = qualname.partition(".")[0]
            if _PROGRAM_NAMESPACE.get(top, _MISSING) is namespace.get(top):
                return False  # a test module starts as a copy of the program's namespace
        elif not _library_module(name):
            return False
        obj = module
        for part in qualname.split("."):
            held = namespace if obj is module else _type_dict(obj) if issubclass(type(obj), type) else None
            obj = _MISSING if held is None else held.get(part, _MISSING)
        return obj is t
    except Exception:  # noqa: BLE001 - a hostile metaclass or module
        return False


def _foreign(x, _depth: int = 0) -> bool:
    """True when x is, or (inside builtin containers) holds, an instance of a class that the
    program created: its `__eq__`, ordering and `__bool__` are the program's say, so they decide
    nothing. Checked by type identity (the builtin `type`, bound before any program ran), so a
    spoofed `__module__` or a patched `builtins.type` changes nothing."""
    t = type(x)
    if _depth > 100 or (id(t) not in _KNOWN_TYPE_IDS and _foreign_type(t)):
        return True
    if t in _CONTAINERS:
        return any(_foreign(v, _depth + 1) for v in x)
    if t is dict:
        return any(_foreign(k, _depth + 1) or _foreign(v, _depth + 1) for k, v in x.items())
    return False


def _culprit(x, _depth: int = 0):
    """What makes x untrusted (for messages): the first class of the program's found in it, the
    string "depth" for nesting deeper than `_foreign` looks, or None."""
    if _depth > 100:
        return "depth"
    t = type(x)
    if _foreign_type(t):
        return t
    items = x if t in _CONTAINERS else [v for kv in x.items() for v in kv] if t is dict else ()
    for v in items:
        found = _culprit(v, _depth + 1)
        if found is not None:
            return found
    return None


def _consults_foreign(a, b, _depth: int = 0) -> bool:
    """Would `a == b` ask an object of the program's? Not for a pair that is one object: Python
    compares those by identity inside containers, and an object equal to itself fakes nothing
    (a mock the test hands the program and gets back)."""
    if a is b:
        return False
    ta, tb = type(a), type(b)
    known = _KNOWN_TYPE_IDS
    if _depth > 100 or (id(ta) not in known and _foreign_type(ta)) or (id(tb) not in known and _foreign_type(tb)):
        return True
    if ta is tb and (ta is list or ta is tuple):
        return len(a) == len(b) and any(_consults_foreign(x, y, _depth + 1) for x, y in zip(a, b))
    if ta is dict and tb is dict:
        if any(_foreign(k, _depth + 1) for k in a) or any(_foreign(k, _depth + 1) for k in b):
            return True  # a key lookup would ask it
        return any(_consults_foreign(v, b[k], _depth + 1) for k, v in a.items() if k in b)
    return _foreign(a, _depth) or _foreign(b, _depth)  # sets, or different types: any program object counts


def _refusal(what: str, *values) -> str:
    found = next((c for c in map(_culprit, values) if c is not None), None)
    if type(found) is str:  # "depth"
        return f"{what} a value nested more than 100 levels deep"
    name = _type_qualname(found) if found is not None else "?"
    return f"{what} an object of the program's class {name}"[:300]


def _identity_member(x, container) -> bool:
    """`x in container` decided by identity alone (for a program object the test got back)."""
    return (type(container) in _CONTAINERS or type(container) is dict) and any(y is x for y in container)


def _strict_eq(a, b):
    """`a == b` for rewritten asserts: an object of the program's class (also inside lists,
    tuples, sets and dicts) may not decide it, so `__eq__ = lambda *a: True` cannot satisfy
    `assert f(x) == 3`: the assert fails instead."""
    if _consults_foreign(a, b):
        raise AssertionError(_refusal("assert compares", a, b))
    return a == b


def _strict_cmp(ops, operands):
    """A (possibly chained) comparison for rewritten asserts, which fails the assert when an
    object of the program's decides a step; `in` still finds the very object it looks for. The
    value is Python's: the last step's result (a pandas Series for `s > 0`), or the first falsy one."""
    result = True
    for i, op in enumerate(ops):
        a, b = operands[i], operands[i + 1]
        if op == "==" or op == "!=":
            refused = _consults_foreign(a, b)
        elif _foreign(a) or _foreign(b):
            if op == "in" and _identity_member(a, b):
                result = True
                continue
            refused = True
        else:
            refused = False
        if refused:
            raise AssertionError(_refusal("assert compares", a, b))
        result = _COMPARE[op](a, b)
        if i < len(ops) - 1 and not result:
            return result
    return result


def _strict_truth(x):
    """`assert x` for rewritten asserts: the truth of a program-defined object is its own
    `__bool__`'s say, so it decides nothing: the assert fails."""
    if _foreign(x):
        raise AssertionError(_refusal("assert on", x))
    return x


def _strict_value(x):
    """An operand of arithmetic, or an argument of a converting builtin, in a rewritten assert:
    a program-defined object there would decide the result with its own dunder methods."""
    if _foreign(x):
        raise AssertionError(_refusal("assert computes with", x))
    return x


# The names rewritten asserts call (see focalpo.sandbox.asserts).
HELPERS = {
    "__focalpo_eq__": _strict_eq, "__focalpo_cmp__": _strict_cmp,
    "__focalpo_truth__": _strict_truth, "__focalpo_value__": _strict_value,
}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# unittest: the same guards, and a check that the program left unittest alone

_ALIASES = {
    "assertEquals": "assertEqual", "failUnlessEqual": "assertEqual", "assertNotEquals": "assertNotEqual",
    "failIfEqual": "assertNotEqual", "assert_": "assertTrue", "failUnless": "assertTrue", "failIf": "assertFalse",
    "assertAlmostEquals": "assertAlmostEqual", "failUnlessAlmostEqual": "assertAlmostEqual",
    "assertNotAlmostEquals": "assertNotAlmostEqual", "failIfAlmostEqual": "assertNotAlmostEqual",
}  # fmt: skip
_EQUALITY = (
    "assertEqual", "assertNotEqual", "assertAlmostEqual", "assertNotAlmostEqual", "assertSequenceEqual",
    "assertListEqual", "assertTupleEqual", "assertDictEqual", "assertSetEqual", "assertMultiLineEqual",
)  # fmt: skip
# Refused whenever a program object takes part (no identity shortcut, as in `_strict_cmp`).
_ANY_PROGRAM_OBJECT = ("assertGreater", "assertGreaterEqual", "assertLess", "assertLessEqual", "assertNotIn")


def _either_foreign(a, b) -> bool:
    return _foreign(a) or _foreign(b)


def guard_unittest() -> None:
    """Make unittest.TestCase's comparing assertions refuse to let an object of the program's
    decide them, as rewritten asserts do (`assertEqual(f(), 3)` with an always-equal object
    fails). Installed once, in the zygote; values without program objects go straight to
    unittest's own methods, messages and all."""
    tc = unittest.TestCase
    if getattr(tc, "_focalpo_guarded", False):
        return

    def guarded(name, refused):
        original = tc.__dict__[name]

        @functools.wraps(original)
        def method(self, first, second, *args, **kwargs):
            if refused(first, second):
                raise self.failureException(_refusal(name + " compares", first, second))
            return original(self, first, second, *args, **kwargs)

        return method

    def truth(name):
        original = tc.__dict__[name]

        @functools.wraps(original)
        def method(self, expr, *args, **kwargs):
            if _foreign(expr):
                raise self.failureException(_refusal(name + " on", expr))
            return original(self, expr, *args, **kwargs)

        return method

    assert_in = tc.__dict__["assertIn"]

    def assertIn(self, member, container, msg=None):
        if _foreign(member) or _foreign(container):
            if _identity_member(member, container):
                return
            raise self.failureException(_refusal("assertIn compares", member, container))
        return assert_in(self, member, container, msg)

    count_equal = tc.__dict__["assertCountEqual"]

    def assertCountEqual(self, first, second, msg=None):
        first, second = list(first), list(second)
        if _foreign(first) or _foreign(second):
            if sorted(map(id, first)) == sorted(map(id, second)):
                return
            raise self.failureException(_refusal("assertCountEqual compares", first, second))
        return count_equal(self, first, second, msg)

    methods = {name: guarded(name, _consults_foreign) for name in _EQUALITY}
    methods.update({name: guarded(name, _either_foreign) for name in _ANY_PROGRAM_OBJECT})
    methods.update({name: truth(name) for name in ("assertTrue", "assertFalse")})
    methods.update(assertIn=assertIn, assertCountEqual=assertCountEqual)
    methods.update({alias: methods[name] for alias, name in _ALIASES.items() if alias in tc.__dict__})
    for name, method in methods.items():
        setattr(tc, name, method)
    tc._focalpo_guarded = True


# Library functions test code checks values with (when their module is loaded): a program that
# replaces one (`np.allclose = lambda *a, **k: True`) would decide the tests that call it.
CHECKERS = {
    "math": ("isclose", "fabs", "isnan", "isinf", "isfinite"),
    "cmath": ("isclose",),
    "operator": ("eq", "ne", "lt", "le", "gt", "ge", "contains", "truth", "not_"),
    "re": ("match", "search", "fullmatch"),
    "numpy": ("allclose", "isclose", "array_equal", "array_equiv", "all", "any", "testing"),
    "numpy.testing": (
        "assert_allclose", "assert_array_equal", "assert_array_almost_equal", "assert_almost_equal",
        "assert_equal", "assert_approx_equal", "assert_array_less", "assert_string_equal",
    ),
    "pandas": ("testing",),
    "pandas.testing": ("assert_frame_equal", "assert_series_equal", "assert_index_equal", "assert_extension_array_equal"),
}  # fmt: skip
_CHECKERS: list = []  # (namespace, what, name, value) as they were before the program ran
_CHECKED: set = set()  # ("numpy", "allclose") & co. in _CHECKERS


def watch_checkers() -> None:
    """Remember the builtins and the loaded `CHECKERS` as they are now (in the zygote before any
    job, and again after a job's test module ran). A checker that is no library function by then
    (`_from_library`) is not remembered: `checkers_changed` keeps refusing it."""
    watched = [(_module_dict(builtins), "builtins", k, v) for k, v in _module_dict(builtins).items()]
    for module_name, names in CHECKERS.items():
        module = _modules.get(module_name)
        if type(module) is _Module:
            ns = _module_dict(module)
            watched.append((_modules, "sys.modules", module_name, module))
            watched += [(ns, module_name, k, ns[k]) for k in names if k in ns and _from_library(ns[k])]
    _CHECKERS[:] = watched
    _CHECKED.clear()
    _CHECKED.update((what, name) for _, what, name, _ in watched if what in CHECKERS)


def checkers_changed() -> str:
    """The builtin or checker the program replaced or deleted, as 'builtins.sorted' ('' if none):
    test code that runs next to the program calls `len`, `sorted`, `math.isclose` & co., so a
    patched one decides an assert (`assert len(f()) == 3` with `builtins.len = lambda x: 3`).
    A checker whose module was first imported during the job (`numpy.testing`) has no snapshot:
    it must then be a library function. Names the program adds are left alone."""
    for ns, what, name, value in _CHECKERS:
        if ns.get(name, _MISSING) is not value:
            return f"{what}.{name}"
    for module_name, names in CHECKERS.items():
        module = _modules.get(module_name)
        if type(module) is not _Module:
            continue
        ns = _module_dict(module)
        for name in names:
            value = ns.get(name, _MISSING)
            if value is not _MISSING and (module_name, name) not in _CHECKED and not _from_library(value):
                return f"{module_name}.{name}"
    return ""


def _from_library(value) -> bool:
    """Is value (a function, a module) the library's? Its `__module__` must name a loaded module
    that is built in or a file under the installation's library directories; a lambda the
    program assigns carries the program's module name."""
    if type(value) is _Module:
        name = value.__name__
    else:
        try:
            name = getattr(value, "__module__", None)
        except Exception:  # noqa: BLE001 - a hostile __getattr__
            return False
    return type(name) is str and (name in sys.builtin_module_names or _library_module(name))


def _library_module(name: str) -> bool:
    """Is the loaded module `name` a file under the installation's library directories?"""
    module = _modules.get(name)
    file = _module_dict(module).get("__file__") if type(module) is _Module else None
    return type(file) is str and file.startswith(_LIBRARY_ROOTS)


_WATCHED: list = []  # (namespace, key, value) that must still hold when a unittest test is judged
_WATCHED_SIZES: list = []  # (namespace, size, what)


def watch_unittest(extra: tuple = ()) -> None:
    """Remember unittest's machinery as it is now (after `guard_unittest`), with `extra` classes
    of the harness's own (its TestResult)."""
    watched, sizes = [], []
    classes = [_ut_case.TestCase, _ut_suite.BaseTestSuite, _ut_suite.TestSuite, _ut_result.TestResult, *extra]
    classes += [c for c in (_module_dict(_ut_case).get("_Outcome"),) if c is not None]
    for cls in classes:
        ns = _type_dict(cls)
        watched += [(ns, k, v) for k, v in ns.items()]
        sizes.append((ns, len(ns), _type_qualname(cls)))
    for module in (unittest, _ut_case, _ut_suite, _ut_result):
        watched.append((_modules, module.__name__, module))
    names = {unittest: ("TestCase", "TestSuite", "TestResult"), _ut_case: ("TestCase",), _ut_suite: ("TestSuite",)}
    for module, held in names.items():
        ns = _module_dict(module)
        watched += [(ns, k, ns[k]) for k in held]
    _WATCHED[:], _WATCHED_SIZES[:] = watched, sizes


def unittest_changed() -> str:
    """What the program changed in unittest's machinery or the builtins ('' if nothing): a
    verdict decided by a patched `assertEqual` (or a replaced `unittest` module) is no verdict."""
    for ns, key, value in _WATCHED:
        if ns.get(key, _MISSING) is not value:
            return f"the program changed unittest: {key}"
    for ns, size, what in _WATCHED_SIZES:
        if len(ns) != size:
            return f"the program changed unittest: {what} (an attribute was added)"
    changed = checkers_changed()
    return f"the program changed {changed}" if changed else ""


def set_program_namespace(ns: dict) -> None:
    """The job's program module namespace (a unittest module starts as a copy of it)."""
    global _PROGRAM_NAMESPACE
    _PROGRAM_NAMESPACE = ns


def trust_test_module(module: types.ModuleType) -> None:
    """Classes this unittest module defines are the test's, not the program's."""
    _TEST_MODULES.append(module)
