"""Hostile programs against focalpo.sandbox: no false pass, no surviving process, a working pool.

Every hostile job goes through `run_hostile`, which asserts that no test passed, that the job
ended within a bound derived from its limits, that no process of the job exists afterwards (see
`sandbox_helpers.leftover_processes`), and that the pool still runs an honest job. Properties that
need root (PID/network/mount namespaces, the per-slot uid) are skipped, with the reason, when
`ExecPool.isolation` says they are not in force.

A known hole would be a strict xfail whose reason starts with "BUG:"; there is none at present.

Run: .venv/bin/python -m pytest tests/sandbox/test_hostile.py -q
"""

from __future__ import annotations

import builtins
import os
import pickle
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from errno import EFBIG, EMFILE, ENOSPC
from pathlib import Path

import pytest
from sandbox_helpers import FAST, HANG, assert_no_leftovers, job_uids, leftover_processes, run_one, statuses

import focalpo.sandbox.slot as sandbox_slot
from focalpo.sandbox import AssertTest, CallTest, ExecPool, ExecResult, Job, Limits, StdioTest, UnittestTest, execute
from focalpo.sandbox.wire import Opaque, safe_loads

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def marker() -> str:
    """A string unique to one test, put in the command lines of processes a hostile job starts."""
    return f"focalpo-hostile-{uuid.uuid4().hex[:12]}"


def need(pool: ExecPool, *features: str) -> None:
    """Skip unless every named isolation feature is in force (e.g. not root: no namespaces)."""
    missing = [f for f in features if not pool.isolation.get(f)]
    if missing:
        pytest.skip(f"sandbox isolation lacks {missing} here: {pool.isolation.get('notes')}")


def _bound(tests) -> float:
    """Worst honest wall time: per test, a hard kill and one re-run; plus the load and slack."""
    per_test = sum(2 * (FAST.time_for(t) + FAST.grace) for t in tests)
    return per_test + FAST.load_time + FAST.grace + 2.0


def run_hostile(pool: ExecPool, program: str, tests, *, marker: str | None = None, **job_kw) -> ExecResult:
    """Run a job whose tests must all fail; check time bound, leftovers and that the pool survives."""
    t0 = time.monotonic()
    res = run_one(pool, program, tests, **job_kw)
    elapsed = time.monotonic() - t0
    false_passes = [v for v in res.verdicts if v.passed]
    assert not false_passes, f"false pass: {false_passes}"
    assert len(res.verdicts) == len(tests)
    assert elapsed < _bound(tests), f"job took {elapsed:.1f}s"
    assert_no_leftovers(pool, marker)
    control = run_one(pool, "def f():\n    return 42", [CallTest("control", "f", (), expected=42)])
    assert statuses(control) == ["pass"], control.verdicts
    return res


def call_and_assert(expected, fn: str = "f") -> list:
    """A call test and an assert test that both need f() to equal `expected`."""
    return [CallTest("call", fn, (), expected=expected), AssertTest("assert", f"assert {fn}() == {expected!r}")]


# --------------------------------------------------------------------------------------------------
# The detector itself


def test_leak_detector_sees_a_running_job(pool, marker):
    """While a job runs, the detector finds it (by uid/ancestry) and its child (by marker too);
    afterwards it finds nothing. Without this, 'no leftovers' below could be vacuous."""
    program = (
        "import subprocess, time\n"
        f"def f():\n    subprocess.Popen(['sh', '-c', 'sleep 30; : {marker}'])\n    time.sleep(1.5)\n    return 1"
    )
    done: list = []
    worker = threading.Thread(target=lambda: done.append(run_one(pool, program, [CallTest("t", "f", (), expected=1, time_limit=3.0)])))
    worker.start()
    seen: list = []
    deadline = time.monotonic() + 1.4
    while time.monotonic() < deadline and not any(marker in p.cmdline for p in seen):
        seen = leftover_processes(job_uids(pool), marker)
        time.sleep(0.05)
    worker.join()
    assert any(marker in p.cmdline for p in seen), seen
    if job_uids(pool):
        assert {p.uid for p in seen} <= job_uids(pool)
    assert statuses(done[0]) == ["pass"]
    assert_no_leftovers(pool, marker)


# --------------------------------------------------------------------------------------------------
# Exits and signals


@pytest.mark.parametrize("exit_stmt", ["sys.exit(0)", "raise SystemExit", "raise SystemExit(0)", "exit()", "os._exit(0)"])
def test_exiting_inside_the_tested_function(pool, exit_stmt):
    """f() would return None if the exit were ignored: exiting must not count as 'returned None'."""
    program = f"import os, sys\ndef f():\n    {exit_stmt}\n"
    module = "import unittest\nclass T(unittest.TestCase):\n    def test_none(self):\n        self.assertIsNone(f())\n"
    tests = [CallTest("call", "f", (), expected=None), AssertTest("assert", "assert f() is None")]
    tests.append(UnittestTest("unittest", module, "T.test_none"))
    res = run_hostile(pool, program, tests)
    assert set(statuses(res)) <= {"exception", "crashed"}


@pytest.mark.parametrize(
    "kill",
    ["os.kill(os.getppid(), 9)", "os.kill(0, 9)", "os.killpg(0, 9)", "os.kill(-1, 9)", "os.kill(1, 9)"],
)
def test_killing_the_parent_or_everything(pool, kill):
    """The job may kill itself at most; the zygote, the pool and this process live on."""
    if kill != "os.kill(0, 9)" and kill != "os.killpg(0, 9)":
        # without its own PID namespace and uid, kill(-1) from a job would reach this very process
        need(pool, "pid_namespace", "job_uid")
    program = f"import os, time\ndef f():\n    try:\n        {kill}\n    except OSError:\n        pass\n    time.sleep(0.1)\n    return 'alive'"
    res = run_hostile(pool, program, call_and_assert("killed"))
    assert set(statuses(res)) <= {"wrong_answer", "crashed"}


# --------------------------------------------------------------------------------------------------
# Forged results

FRAME = "import pickle, struct\ndef frame(obj):\n    data = pickle.dumps(obj)\n    return struct.pack('<I', len(data)) + data\n"


def test_fake_result_markers_on_stdout_and_stderr(pool):
    program = FRAME + (
        "import sys\n"
        "def f():\n"
        "    for stream in (sys.stdout, sys.stderr):\n"
        "        stream.write('PASS\\nok\\n{\"status\": \"pass\"}\\nAll tests passed\\n')\n"
        "        stream.flush()\n"
        "        stream.buffer.write(frame(('test', 0, 'ok', '', 0.0, 42)) + frame(('done',)))\n"
        "    return 0\n"
        "if __name__ == '__main__':\n    f()\n"
    )
    module = "import unittest\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.assertEqual(f(), 42)\n"
    tests = call_and_assert(42) + [StdioTest("stdio", "", "42\n"), UnittestTest("unittest", module, "T.test_it")]
    run_hostile(pool, program, tests)


RAW_FRAME = "def rawframe(data):\n    return struct.pack('<I', len(data) | 1 << 31) + data\n"

FORGERIES = {
    # claim a clean load and a pass (payload None) for every test, then 'done', before the harness reports
    "claim_all_at_import": FRAME
    + "import os\nos.write(3, frame(('load', 'ok', '', 0.0)) + b''.join(frame(('test', i, 'ok', '', 0.0, None)) for i in range(3)) + frame(('done',)))\ndef f():\n    return None",
    # a pickle whose loading would run code in the parent
    "code_running_pickle": FRAME
    + "import os\nclass Exploit:\n    def __reduce__(self):\n        return (exec, (\"open(SENTINEL, 'w').write('pwned')\",))\ndef f():\n    os.write(3, frame(('test', 0, 'ok', '', 0.0, Exploit())))\n    return None",
    # a payload of a program-defined class that equals everything
    "always_equal_payload": FRAME
    + "import os\nclass AlwaysEqual:\n    def __eq__(self, other):\n        return True\ndef f():\n    os.write(3, frame(('test', 0, 'ok', '', 0.0, AlwaysEqual())))\n    return None",
    "garbage": "import os\ndef f():\n    os.write(3, os.urandom(64))\n    return None",
    "huge_length": "import os, struct\ndef f():\n    os.write(3, struct.pack('<I', 0xFFFFFFF0) + b'x' * 100)\n    return None",
    "truncated_then_exit": "import os, struct\ndef f():\n    os.write(3, struct.pack('<I', 1000) + b'x' * 10)\n    os._exit(0)",
    "fd3_is_stdout": "import os\nos.dup2(1, 3)\ndef f():\n    return None",
    # a batch of passing reports with the right values, but longer than the test list: refused whole
    "oks_beyond_the_last_test": FRAME
    + "import os\nos.write(3, frame(('load', 'ok', '', 0.0)) + frame(('oks', 0, [0.0] * 4, [pickle.dumps(k + 1) for k in range(4)])))\ndef f():\n    return None",
    # a batch whose durations are not floats: refused whole
    "oks_bad_durations": FRAME
    + "import os\nos.write(3, frame(('load', 'ok', '', 0.0)) + frame(('oks', 0, ['0'] * 3, [pickle.dumps(k + 1) for k in range(3)])))\ndef f():\n    return None",
    # raw frames (the form of a big return value) with the right pickle, but no ('ran', i, dt) notice
    "raw_without_notice": FRAME + RAW_FRAME
    + "import os\ndef f():\n    os.write(3, rawframe(pickle.dumps(1, protocol=5)))\n    return None",
    # one notice, then two raw reports: the second one would have to be the next test's
    "two_raw_after_one_notice": FRAME + RAW_FRAME
    + "import os\ndef f():\n    os.write(3, frame(('ran', 0, 0.0)) + rawframe(pickle.dumps(0)) + rawframe(pickle.dumps(2, protocol=5)))\n    return None",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_frames_on_the_result_pipe_cannot_pass_call_tests(pool, forgery, tmp_path):
    """Call tests are judged in the parent on decoded plain values, so forged bytes on fd 3 can at
    most crash the test (or pose as a wrong value); a pickle that would run code is refused."""
    sentinel = tmp_path / "pwned"
    program = FORGERIES[forgery].replace("SENTINEL", repr(str(sentinel)))
    tests = [CallTest(f"t{i}", "f", (), expected=i + 1) for i in range(3)]
    res = run_hostile(pool, program, tests)
    assert not sentinel.exists()
    assert set(statuses(res)) <= {"wrong_answer", "crashed"}


def test_unannounced_raw_frame_header_allocates_nothing(pool):
    """A raw header claiming a 1 GiB body, with no notice before it, is a protocol violation at
    once: the parent does not allocate the body (its peak memory stays put) or wait for it."""
    import resource

    program = FRAME + RAW_FRAME + "import os\ndef f():\n    os.write(3, struct.pack('<I', (1 << 30) | 1 << 31))\n    return 1\n"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = run_hostile(pool, program, [CallTest("t", "f", (), expected=1)])
    assert statuses(res) == ["crashed"] and "invalid result frame" in res.verdicts[0].message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 256 << 10  # KiB


def test_safe_loads_refuses_code_running_pickles(tmp_path):
    """Control for `code_running_pickle` above: the frame is dangerous to a plain unpickler."""
    sentinel = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (exec, (f"open({str(sentinel)!r}, 'w').write('pwned')",))

    blob = pickle.dumps(("test", 0, "ok", "", 0.0, Exploit()))
    with pytest.raises(pickle.UnpicklingError):
        safe_loads(blob)
    assert not sentinel.exists()
    pickle.loads(blob)  # what a plain unpickler would have done in the parent
    assert sentinel.read_text() == "pwned"


@pytest.mark.parametrize(
    "payload, message",
    [
        ("b'not a pickle'", "the job returned an undecodable value"),
        ("1", "malformed call report"),  # call outputs must arrive as pickle bytes
        ("pickle.dumps(Evil())", "the job returned an undecodable value"),  # a global outside the allow-list
    ],
)
def test_forged_call_reports_are_crashes(pool, payload, message):
    program = FRAME + (
        "import os\n"
        "class Evil:\n    def __reduce__(self):\n        return (os.system, ('true',))\n"
        f"def f():\n    os.write(3, frame(('test', 0, 'ok', '', 0.0, {payload})))\n    return 1\n"
    )
    res = run_hostile(pool, program, [CallTest("t", "f", (), expected=1)])
    assert statuses(res) == ["crashed"] and res.verdicts[0].message == message


def test_forged_transfer_notice_cannot_extend_the_time_limit(pool):
    program = FRAME + (
        "import os, signal, time\n"
        "def f():\n"
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "    for _ in range(10):                   # 2 s of 'work', 4 x the 0.5 s limit\n"
        "        os.write(3, frame(('ran', 0, 0.0)))\n"
        "        time.sleep(0.2)\n"
        "    return 1\n"
    )
    res = run_hostile(pool, program, [CallTest("slow", "f", (), expected=1, time_limit=HANG)])
    assert statuses(res)[0] in ("timeout", "crashed")  # a second notice is a forgery: protocol kill


def test_one_forged_transfer_notice_buys_no_compute_time(pool):
    """After a ('ran', i, dt) notice the value's bytes must flow; silent computing is a timeout."""
    program = FRAME + (
        "import os, signal, time\n"
        "def f():\n"
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "    os.write(3, frame(('ran', 0, 0.0)))\n"
        "    time.sleep(2.0)                        # 4 x the 0.5 s limit, sending nothing\n"
        "    return 1\n"
    )
    res = run_hostile(pool, program, [CallTest("slow", "f", (), expected=1, time_limit=HANG)])
    assert statuses(res) == ["timeout"]


def test_invalid_frame_during_load_is_named(pool):
    res = run_hostile(pool, "import os\nos.write(3, b'\\0\\0\\0\\0')\ndef f():\n    return 0", [CallTest("t", "f", (), expected=1)])
    assert "invalid result frame" in res.load_error, res.load_error


# --------------------------------------------------------------------------------------------------
# Objects that lie about equality or truth

ALWAYS_EQUAL = (
    "class AlwaysEqual:\n"
    "    def __eq__(self, other):\n        return True\n"
    "    def __ne__(self, other):\n        return False\n"
    "    __hash__ = object.__hash__\n"
)


def test_object_equal_to_everything(pool):
    program = ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()"
    tests = call_and_assert(3) + [
        CallTest("call_list", "f", (), expected=[1, 2]),
        AssertTest("reversed", "assert 3 == f()"),
        AssertTest("not_ne", "assert not (f() != 3)"),
        AssertTest("both", "assert f() == 3 and f() == 4"),
    ]
    res = run_hostile(pool, program, tests, return_outputs=True)
    assert isinstance(res.outputs[0], Opaque)


def test_int_subclass_equal_to_everything(pool):
    program = (
        "class Liar(int):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    __hash__ = int.__hash__\n"
        "def f():\n    return Liar(0)"
    )
    run_hostile(pool, program, call_and_assert(3) + [AssertTest("chain", "assert f() == 3 and f() == 4")])


def test_truthy_object_for_bare_asserts(pool):
    program = "class Truthy:\n    def __bool__(self):\n        return True\ndef f():\n    return Truthy()"
    tests = [
        CallTest("call", "f", (), expected=True),
        AssertTest("bare", "assert f()"),
        AssertTest("and", "assert f() and f()"),
        AssertTest("not_not", "assert not not f()"),
    ]
    run_hostile(pool, program, tests)


ASSERT_BYPASSES = {
    # `==` on containers compares the elements with the program's __eq__
    "nested_container": (ALWAYS_EQUAL + "def f():\n    return [AlwaysEqual()]", "assert f() == [3]"),
    # `in` is not rewritten; list.__contains__ uses the element's reflected __eq__
    "membership": (ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()", "assert f() in [3, 4]"),
    # _strict_eq trusts type(x).__module__, which a class can set
    "module_spoof": (ALWAYS_EQUAL.replace(":\n", ":\n    __module__ = 'builtins'\n", 1) + "def f():\n    return AlwaysEqual()", "assert f() == 3"),
    # ... a library module's name: the module's file is the library's, but it does not hold the class
    "library_spoof": (
        "import json\n" + ALWAYS_EQUAL.replace(":\n", ":\n    __module__ = 'json'\n", 1) + "def f():\n    return AlwaysEqual()",
        "assert f() == 3",
    ),
    # a library object that equals anything
    "mock_any": ("from unittest.mock import ANY\ndef f():\n    return ANY", "assert f() == 3"),
    # _strict_eq looks up the builtin `type` at call time
    "builtins_type": (
        ALWAYS_EQUAL + "import builtins\n_type = type\nbuiltins.type = lambda *a: int if len(a) == 1 else _type(*a)\ndef f():\n    return AlwaysEqual()",
        "assert f() == 3",
    ),
    # ordering and chained comparisons go through the program's __lt__ / __gt__
    "ordering": (ALWAYS_EQUAL.replace("    __hash__", "    __lt__ = __gt__ = __eq__\n    __hash__", 1) + "def f():\n    return AlwaysEqual()", "assert 2 < f() < 3"),
    # a metaclass whose __eq__/__hash__ make the class look like int in a set lookup
    "metaclass_hash": (
        "class Meta(type):\n    __eq__ = lambda self, other: True\n    __hash__ = lambda self: hash(int)\n"
        "class Liar(metaclass=Meta):\n    __eq__ = lambda self, other: True\n    __hash__ = object.__hash__\n"
        "def f():\n    return Liar()",
        "assert f() == 3",
    ),
    # a dict value of the program's class
    "dict_value": (ALWAYS_EQUAL + "def f():\n    return {'a': AlwaysEqual()}", "assert f() == {'a': 3}"),
}


@pytest.mark.parametrize("bypass", sorted(ASSERT_BYPASSES))
def test_assert_rewrite_bypasses(pool, bypass):
    program, code = ASSERT_BYPASSES[bypass]
    res = run_hostile(pool, program, [AssertTest("t", code)])
    assert statuses(res) == ["wrong_answer"]


def test_honest_asserts_still_pass_after_rewriting(pool):
    program = (
        "import numpy as np\nfrom collections import Counter\nimport ipaddress\n"  # ipaddress: first imported here
        "def f():\n    return [1, (2, 'x'), {'k': {3}}]\n"
        "def g():\n    return np.int64(3)\n"
        "def h():\n    return Counter('aab')\n"
        "def ip():\n    return ipaddress.ip_address('10.0.0.1')\n"
    )
    code = (
        "assert f() == [1, (2, 'x'), {'k': {3}}]\nassert f() != [1]\nassert 0 < g() <= 3\n"
        "assert 'x' in f()[1]\nassert 5 not in f()\nassert g() == 3\nassert h() == {'a': 2, 'b': 1}\n"
        "assert f() is not None\nassert f()\nassert not []\n"
        "assert ip() == ipaddress.ip_address('10.0.0.1') < ipaddress.ip_address('10.0.0.2')\nassert [ip()] != [ip().reverse_pointer]\n"
        "assert (np.array([1, 2]) > 0).all()"  # a nested comparison keeps its value: an array, not its truth
    )
    res = run_one(pool, program, [AssertTest("t", code)])
    assert statuses(res) == ["pass"], res.verdicts


def test_a_value_nested_too_deep_to_inspect_decides_no_assert(pool):
    """Program objects are looked for 100 levels deep; what is nested deeper counts as one."""
    program = "def f():\n    x = [1]\n    for _ in range(150):\n        x = [x]\n    return x\n"
    res = run_hostile(pool, program, [AssertTest("t", "assert f() == f()")])
    assert res.verdicts[0].message == "AssertionError: assert compares a value nested more than 100 levels deep"


def test_program_objects_cannot_compute_their_way_through_asserts(pool):
    """Arithmetic and numeric builtins on a program object would let its dunder methods decide
    (`__sub__` -> 0.0, `__float__` -> the expected value, `__neg__`, `__abs__`, `__round__`);
    so would a comparison nested in a generator expression. Each of these asserts must fail."""
    program = ALWAYS_EQUAL + (
        "class Liar:\n"
        "    def __sub__(self, other):\n        return 0.0\n"
        "    __rsub__ = __add__ = __radd__ = __sub__\n"
        "    def __neg__(self):\n        return 3\n"
        "    def __float__(self):\n        return 2.5\n"
        "    def __len__(self):\n        return 3\n"
        "    def __abs__(self):\n        return 0.0\n"
        "    def __round__(self, n=0):\n        return 3\n"
        "def f(*a):\n    return Liar()\n"
        "def g(x):\n    return AlwaysEqual()\n"
    )
    tests = [
        AssertTest("sub", "assert abs(f() - 3.0) < 1e-6"),
        AssertTest("rsub", "assert abs(3.0 - f()) < 1e-6"),
        AssertTest("neg", "assert -f() == 3"),
        AssertTest("isclose", "import math\nassert math.isclose(f(1), 2.5, rel_tol=1e-3)"),
        AssertTest("abs", "assert abs(f()) < 1e-6"),
        AssertTest("round", "assert round(f()) == 3"),
        AssertTest("genexp", "assert all(g(x) == x + 1 for x in range(3))"),
        AssertTest("listcomp", "assert [g(x) for x in range(2)] == [1, 2]"),
    ]
    res = run_hostile(pool, program, tests, limits=replace(FAST, fail_fast=False))
    assert statuses(res) == ["wrong_answer"] * len(tests), res.verdicts


PATCHED_CHECKERS = {
    # test code calls the patched builtin, or a library function it checks values with
    "sorted": ("import builtins\nbuiltins.sorted = lambda x, **k: [1, 2, 3]\ndef f():\n    return [3, 1]", "assert sorted(f()) == [1, 2, 3]"),
    "len": ("import builtins\nbuiltins.len = lambda x: 3\ndef f():\n    return []", "assert len(f()) == 3"),
    "math_isclose": ("import math\nmath.isclose = lambda *a, **k: True\ndef f():\n    return 0.0", "import math\nassert math.isclose(f(), 2.5)"),
    "numpy_allclose": (
        "import numpy as np\nnp.allclose = lambda *a, **k: True\ndef f():\n    return [0.0]",
        "import numpy as np\nassert np.allclose(f(), [2.5])",
    ),
    # the guards' own `any`, so that a program object's __eq__ gets asked ...
    "any": (ALWAYS_EQUAL + "import builtins\nbuiltins.any = lambda *a: False\ndef f():\n    return [AlwaysEqual()]", "assert f() == [3]"),
    # ... and puts the builtin back before anyone looks
    "any_restored": (
        "import builtins\n_any = builtins.any\nclass Sneaky:\n    def __eq__(self, other):\n        builtins.any = _any\n"
        "        return True\n    __hash__ = object.__hash__\nbuiltins.any = lambda *a: False\ndef f():\n    return [Sneaky()]",
        "assert f() == [3]",
    ),
}


@pytest.mark.parametrize("patch", sorted(PATCHED_CHECKERS))
def test_patched_builtins_and_checkers_decide_no_assert(pool, patch):
    program, code = PATCHED_CHECKERS[patch]
    run_hostile(pool, program, [AssertTest("t", code)])


def test_a_builtin_the_program_adds_is_no_tampering(pool):
    res = run_one(pool, "import builtins\nbuiltins.xrange = range\ndef f():\n    return sum(xrange(3))", [AssertTest("t", "assert f() == 3")])
    assert statuses(res) == ["pass"], res.verdicts


def test_no_replaced_builtin_breaks_the_harness(pool):
    """Every builtin replaced by a function that raises, once at load and once during the call:
    the call test is still judged (in the parent: it passes) and the assert is refused, never a
    crash. Before the harness had its own builtins (`focalpo.sandbox._builtins`), replacing `len`,
    `dict`, `getattr`, `max` or `memoryview` killed the job ("invalid result frame")."""
    names = sorted(n for n, v in vars(builtins).items() if not n.startswith("_") and callable(v))
    boom = "import builtins\ndef _boom(*a, **k):\n    raise RuntimeError('boom')\n"
    jobs = []
    for name in names:
        at_load = f"{boom}builtins.{name} = _boom\ndef f(x):\n    return x + 1\n"
        in_call = f"{boom}def f(x):\n    builtins.{name} = _boom\n    return x + 1\n"
        for program in (at_load, in_call):
            jobs.append(Job(program, [CallTest("call", "f", (1,), expected=2), AssertTest("assert", "assert f(1) == 2")]))
    wrong = []
    for job, res in zip(jobs, pool.map(jobs)):
        call, check = res.verdicts
        if call.status != "pass" or check.status != "exception" or "the program changed builtins." not in check.message:
            wrong.append((job.program.splitlines()[-3:], [(v.status, v.message) for v in res.verdicts]))
    assert len(names) > 100 and not wrong, wrong


def test_test_code_never_runs_on_the_harness_copy_of_the_builtins(pool):
    """A program that deletes its own `__builtins__` and then edits its caller's: the test code
    must still run on the real builtins module (exec would otherwise give it the harness's
    private copy, and the program could break the harness through it)."""
    program = (
        "import sys\ndel globals()['__builtins__']\n"
        "def f():\n    b = sys._getframe(1).f_builtins\n    b['len'] = lambda x: 0\n    return 3\n"
    )
    module = "import unittest\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.assertTrue(f() == 3)\n"
    for test in (AssertTest("t", "assert f() == 3"), UnittestTest("t", module, "T.test_it")):
        res = run_hostile(pool, program, [test])
        assert statuses(res) == ["exception"] and res.verdicts[0].message == "the program changed builtins.len", res.verdicts


def test_program_objects_may_still_be_passed_to_the_program(pool):
    """The guard is on numbers the assert computes, not on program objects as arguments: MBPP's
    `max_chain_length([Pair(5, 24), ...], 4) == 3` style and `len()`/`str()` of a class-based
    task's own objects keep working."""
    program = (
        "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
        "def longest(pairs):\n    return max(p.b - p.a for p in pairs)\n"
        "class Stack(list):\n    def __str__(self):\n        return 'Stack' + super().__repr__()\n"
    )
    tests = [
        AssertTest("args", "assert longest([Pair(5, 24), Pair(15, 25)]) == 19"),
        AssertTest("arith", "assert abs(longest([Pair(1, 2)]) - 1) < 1e-9 and -longest([Pair(0, 3)]) == -3"),
        AssertTest("genexp", "assert all(longest([Pair(0, k)]) == k for k in range(1, 4))"),
        AssertTest("class_task", "s = Stack([1, 2])\nassert len(s) == 2 and str(s) == 'Stack[1, 2]' and sorted(s) == [1, 2]"),
    ]
    res = run_one(pool, program, tests)
    assert statuses(res) == ["pass"] * 4, res.verdicts


def test_a_skip_raised_by_the_program_is_not_a_pass(pool):
    module = "import unittest\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.assertEqual(f(), 3)\n"
    program = "import unittest\ndef f():\n    raise unittest.SkipTest('no')"
    res = run_hostile(pool, program, [UnittestTest("t", module, "T.test_it")])
    assert statuses(res) == ["exception"] and res.verdicts[0].message == "SkipTest: no"


LIAR = (
    "class Liar:\n"
    "    def __sub__(self, other):\n        return 0.0\n"
    "    __rsub__ = __sub__\n"
    "    def __eq__(self, other):\n        return True\n"
    "    __gt__ = __lt__ = __ge__ = __le__ = __eq__\n"
    "    def __bool__(self):\n        return True\n"
    "    __hash__ = object.__hash__\n"
)
PATCH_ASSERT = "unittest.TestCase.assertEqual = lambda self, *a, **k: None"
UNITTEST_BYPASSES = {
    # (program, body of the test method): each must fail
    # assertEqual & co. would use the program object's __eq__ / ordering / truth
    "always_equal": (ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()", "self.assertEqual(f(), 3)"),
    "reversed": (ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()", "self.assertEqual(3, f())"),
    "alias": (ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()", "self.assertEquals(f(), 3)"),
    "in_a_list": (ALWAYS_EQUAL + "def f():\n    return [1, AlwaysEqual()]", "self.assertListEqual(f(), [1, 2])"),
    "in_a_dict": (ALWAYS_EQUAL + "def f():\n    return {'a': AlwaysEqual()}", "self.assertDictEqual(f(), {'a': 2})"),
    "count_equal": (  # unhashable: unittest falls back to `==`
        ALWAYS_EQUAL.replace("object.__hash__", "None") + "def f():\n    return [AlwaysEqual(), AlwaysEqual()]",
        "self.assertCountEqual(f(), [1, 2])",
    ),
    "not_equal": ("class Other:\n    __ne__ = lambda self, other: True\ndef f():\n    return Other()", "self.assertNotEqual(f(), 0)"),
    "membership": (ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()", "self.assertIn(f(), [3, 4])"),
    "almost_equal": (LIAR + "def f():\n    return Liar()", "self.assertAlmostEqual(f(), 3.0)"),
    "ordering": (LIAR + "def f():\n    return Liar()", "self.assertGreater(f(), 10)"),
    "truth": (LIAR + "def f():\n    return Liar()", "self.assertTrue(f())"),
    # comparisons and arithmetic inside the arguments are guarded like an assert's condition
    "compare_in_argument": (ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()", "self.assertTrue(f() == 3)"),
    "arithmetic_in_argument": (LIAR + "def f():\n    return Liar()", "self.assertLess(abs(f() - 3.0), 1e-6)"),
    "plain_assert": (ALWAYS_EQUAL + "def f():\n    return AlwaysEqual()", "assert f() == 3"),
    # a library object that equals anything
    "mock_any": ("from unittest.mock import ANY\ndef f():\n    return ANY", "self.assertEqual(f(), 3)"),
    # the program patches the (shared, preloaded) unittest module: before the test module runs,
    # during the test, or by replacing the module itself or the harness's result class
    "patched_assert": (f"import unittest\n{PATCH_ASSERT}\ndef f():\n    return 0", "self.assertEqual(f(), 3)"),
    "patched_during_test": (f"import unittest\ndef f():\n    {PATCH_ASSERT}\n    return 0", "x = f()\nself.assertEqual(x, 3)"),
    "patched_result": (
        "import unittest\ndef f():\n    for c in unittest.TestResult.__subclasses__():\n"
        "        c.addFailure = c.addError = lambda *a, **k: None\n    return 0",
        "x = f()\nself.assertEqual(x, 3)",
    ),
    "patched_builtin": (
        "import builtins\nbuiltins.sorted = lambda x, **k: [1, 2, 3]\ndef f():\n    return [3, 1]",
        "self.assertEqual(sorted(f()), [1, 2, 3])",
    ),
    "patched_checker": (
        "import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None\ndef f():\n    return [0.0]",
        "import numpy as np\nnp.testing.assert_allclose(f(), [2.5])",
    ),
    "replaced_module": (
        "import sys, unittest\nclass Case(unittest.TestCase):\n    def assertEqual(self, *a, **k):\n        pass\n"
        "fake = type(sys)('unittest')\nfake.__dict__.update(unittest.__dict__)\nfake.TestCase = Case\n"
        "sys.modules['unittest'] = fake\ndef f():\n    return 0",
        "self.assertEqual(f(), 3)",
    ),
}


def unittest_module(body: str, head: str = "") -> str:
    body = "\n".join("        " + line for line in body.splitlines())
    return f"import unittest\n{head}class T(unittest.TestCase):\n    def test_it(self):\n{body}\n"


@pytest.mark.parametrize("bypass", sorted(UNITTEST_BYPASSES))
def test_unittest_bypasses(pool, bypass):
    program, body = UNITTEST_BYPASSES[bypass]
    res = run_hostile(pool, program, [UnittestTest("t", unittest_module(body), "T.test_it")])
    assert statuses(res) in (["wrong_answer"], ["exception"]), res.verdicts
    if bypass.startswith(("patched", "replaced")):
        assert res.verdicts[0].message.startswith("the program changed "), res.verdicts[0].message


def test_honest_unittest_tests_still_pass(pool):
    """What the guards must leave alone: mocks the test hands the program and gets back, mock
    call lists, the test module's own classes and settings, values of library classes first
    created during the job (pandas, matplotlib's containers), and program objects compared to
    themselves or used as arguments."""
    program = (
        "import pandas as pd\nfrom matplotlib.container import BarContainer\n"
        "class Node:\n    def __init__(self, v):\n        self.v = v\n"
        "def use(m):\n    m('x')\n    return m.return_value\n"
        "def frame():\n    return pd.DataFrame({'a': [1, 2]})\n"
        "def bars():\n    return BarContainer(['patch 1', 'patch 2'])\n"
        "def same(x):\n    return x\n"
        "def total(nodes):\n    return sum(n.v for n in nodes)\n"
    )
    head = (
        "from unittest.mock import MagicMock, call\nimport pandas as pd\nunittest.TestCase.maxDiff = None\n"
        "class Point:\n    def __init__(self, x):\n        self.x = x\n"
        "    def __eq__(self, other):\n        return isinstance(other, Point) and other.x == self.x\n"
    )
    body = (
        "m = MagicMock()\nself.assertEqual(use(m), m.return_value)\nself.assertEqual(m.call_args_list, [call('x')])\n"
        "self.assertEqual(Point(1), Point(1))\nself.assertNotEqual(Point(1), Point(2))\n"
        "pd.testing.assert_frame_equal(frame(), pd.DataFrame({'a': [1, 2]}))\nself.assertEqual(frame().shape, (2, 1))\n"
        "self.assertTrue((frame()['a'] > 0).all())\nself.assertTrue(bars())\nself.assertEqual(len(bars()), 2)\n"
        "n = Node(3)\nself.assertIs(same(n), n)\nself.assertEqual(same(n), n)\nself.assertIn(n, [same(n)])\n"
        "self.assertEqual(total([Node(1), Node(2)]), 3)\nself.assertAlmostEqual(total([Node(1)]) / 2, 0.5)\n"
        "self.assertCountEqual([n, 1], [1, same(n)])\nassert total([Node(4)]) == 4"
    )
    test = UnittestTest("t", unittest_module(body, head), "T.test_it", time_limit=30.0)
    res = run_one(pool, program, [test], limits=Limits(load_time=60.0))  # pandas, matplotlib: first import
    assert statuses(res) == ["pass"], res.verdicts


# --------------------------------------------------------------------------------------------------
# Patching the harness's tools

MONKEYPATCHES = {
    "os.write": "import os\nos.write = lambda fd, data: len(data)",
    "pickle.dumps": (
        "import pickle\n_dumps = pickle.dumps\n"
        "pickle.dumps = lambda obj, *a, **k: _dumps(('test', obj[1], 'ok', '', 0.0, 3) if obj[0] == 'test' else obj, *a, **k)"
    ),
    "builtins.print": "import builtins\nbuiltins.print = lambda *a, **k: None",
    "builtins.len": "import builtins\nbuiltins.len = lambda x: 0",
    "builtins.isinstance": "import builtins\nbuiltins.isinstance = lambda *a: True",
    "builtins.memoryview": "import builtins\nbuiltins.memoryview = lambda x: b''",
    "struct.pack": "import struct\nstruct.pack = lambda *a: b'\\0\\0\\0\\0'",
    "sys.modules_pickle": "import sys\nsys.modules['pickle'] = None",
}


@pytest.mark.parametrize("patch", sorted(MONKEYPATCHES))
def test_monkeypatching_what_the_harness_uses(pool, patch):
    program = MONKEYPATCHES[patch] + "\ndef f():\n    return 0"
    run_hostile(pool, program, call_and_assert(3))


# --------------------------------------------------------------------------------------------------
# Processes


@pytest.mark.parametrize(
    "body",
    ["while True:\n        os.fork()", "while True:\n        try:\n            os.fork()\n        except BaseException:\n            pass"],
    ids=["plain", "swallowing"],
)
def test_fork_bomb(pool, body):
    need(pool, "job_uid")  # RLIMIT_NPROC binds a uid of its own only
    program = f"import os\ndef f():\n    {body}"
    run_hostile(pool, program, [CallTest("bomb", "f", (), expected=1, time_limit=HANG)])


def test_setsid_children_and_double_fork_daemons_are_gone(pool, marker):
    program = f'''
import os, signal, subprocess, time
CMD = ["sh", "-c", "sleep 60; : {marker}"]

def f():
    subprocess.Popen(CMD, start_new_session=True, stdin=subprocess.DEVNULL)   # its own session
    if os.fork() == 0:                                                       # classic daemon
        os.setsid()
        if os.fork() == 0:
            for sig in (signal.SIGHUP, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            os.execvp("sh", CMD)
        os._exit(0)
    time.sleep(0.2)
    return "spawned"
'''
    run_hostile(pool, program, [CallTest("daemons", "f", (), expected="nothing")], marker=marker)


def test_daemon_holding_the_output_pipes_does_not_hang_the_job(pool, marker):
    """The parent waits for EOF on stdout/stderr/results; a daemon keeping them open must not
    stretch the job to the daemon's lifetime."""
    program = f'''
import os, time
def f():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sh", ["sh", "-c", "sleep 60; : {marker}"])   # inherits fds 1, 2 and 3
        os._exit(0)
    return "spawned"
'''
    t0 = time.monotonic()
    run_hostile(pool, program, [CallTest("daemon", "f", (), expected="nothing")], marker=marker)
    assert time.monotonic() - t0 < 3.0


@pytest.mark.parametrize(
    "where",
    ["import os\nos.closerange(0, 1000)\ndef f():\n    return 0", "import os\ndef f():\n    os.closerange(0, 1000)\n    return 0",
     "import os\ndef f():\n    os.closerange(0, 1000)\n    [os.open('/dev/null', os.O_WRONLY) for _ in range(5)]\n    return 0"],
    ids=["at_import", "in_function", "reopened_as_devnull"],
)
def test_closing_all_file_descriptors(pool, where):
    res = run_hostile(pool, where, [CallTest("t0", "f", (), expected=1), CallTest("t1", "f", (), expected=1)])
    assert statuses(res) == ["crashed", "crashed"]


# --------------------------------------------------------------------------------------------------
# Time and memory

HANGS = {
    "sigalrm_ignored": "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass",
    "sigalrm_blocked": "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n    while True:\n        pass",
    "timer_cancelled": "signal.setitimer(signal.ITIMER_REAL, 0)\n    while True:\n        pass",
    "timeout_swallowed": "while True:\n        try:\n            n = 0\n            while True:\n                n += 1\n        except BaseException:\n            pass",
    "catastrophic_regex": "import re\n    return re.match(r'(a*)*b', 'a' * 64)",
    "c_level_loop": "return sum(range(10 ** 13))",  # one C call that never checks for signals
}


@pytest.mark.parametrize("hang", sorted(HANGS))
def test_infinite_loops_are_killed(pool, hang):
    program = f"import signal\ndef f():\n    {HANGS[hang]}"
    res = run_hostile(pool, program, [CallTest("hang", "f", (), expected=1, time_limit=HANG)])
    assert statuses(res) == ["timeout"]


LIMITS_PROGRAM = """
import os, resource

def limits():
    names = ["RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_FSIZE", "RLIMIT_NOFILE"]
    with open("/proc/self/oom_score_adj") as f:
        return [list(resource.getrlimit(getattr(resource, n))) for n in names] + [f.read().strip()]

def in_a_child():
    r, w = os.pipe()
    if os.fork() == 0:
        os.write(w, repr(limits()).encode())
        os._exit(0)
    os.close(w)
    os.wait()
    return eval(os.read(r, 4096))

def write(n):
    with open("big.bin", "wb") as f:
        f.write(b"x" * n)

def open_many(n):
    fds = []
    try:
        for _ in range(n):
            fds.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as e:
        return [len(fds), e.errno]
    return [len(fds), 0]
"""


def test_resource_limits_reach_the_program_and_its_children(pool):
    """The defaults as documented (4 GiB of address space, no core dumps, 64 MiB files, 256 fds),
    and every job process is the OOM killer's first choice (memory is bounded per process only)."""
    d = Limits()
    tests = [CallTest("job", "limits", ()), CallTest("child", "in_a_child", ())]
    res = run_one(pool, LIMITS_PROGRAM, tests, limits=d, return_outputs=True)
    want = [[d.memory] * 2, [0, 0], [d.file_size] * 2, [d.open_files] * 2, "1000"]
    assert d.memory == 4 << 30
    assert res.outputs == [want, want], res.verdicts


def test_file_size_and_open_file_limits_bind(pool):
    tests = [CallTest("write", "write", (3 << 20,)), CallTest("open", "open_many", (500,))]
    res = run_one(pool, LIMITS_PROGRAM, tests, limits=replace(FAST, file_size=1 << 20, open_files=40), return_outputs=True)
    assert [v.status for v in res.verdicts] == ["exception", "pass"], res.verdicts  # no expected output: any value passes
    assert res.verdicts[0].message == f"OSError: [Errno {EFBIG}] File too large"
    opened, err = res.outputs[1]
    assert err == EMFILE and opened < 40


def test_memory_bomb(pool):
    program = (
        "def at_once():\n    return ' ' * (1 << 40)\n"
        "def touching():\n    chunks = []\n    while True:\n        chunks.append(bytearray(50_000_000))\n"
    )
    tests = [CallTest("at_once", "at_once", (), expected=""), CallTest("touching", "touching", (), expected=0, time_limit=3.0)]
    # 256 MiB of address space: the touching bomb faults in ~0.2 GB, quick even on a busy machine
    res = run_hostile(pool, program, tests, limits=replace(FAST, memory=256 << 20))
    assert statuses(res) == ["memory", "memory"]


@pytest.mark.parametrize(
    "flood, stream",
    [
        ("while True:\n        print('x' * 1000)", "stdout"),
        ("import sys\n    while True:\n        sys.stderr.write('y' * 1000)", "stderr"),
        ("import os, signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        os.write(1, b'z' * 65536)", "stdout"),
    ],
    ids=["print", "stderr", "os.write_ignoring_alarm"],
)
def test_output_flood_is_capped_and_flagged(pool, flood, stream):
    res = run_hostile(pool, f"def f():\n    {flood}", [CallTest("flood", "f", (), expected=1, time_limit=HANG)])
    assert statuses(res) == ["timeout"]
    text, truncated = getattr(res, stream), getattr(res, f"{stream}_truncated")
    assert truncated and 0 < len(text.encode()) <= FAST.output


def test_deep_recursion(pool):
    program = (
        "import sys\n"
        "def plain(n=0):\n    return plain(n + 1)\n"
        "def unlimited(n=0):\n    sys.setrecursionlimit(10 ** 7)\n    return unlimited(n + 1)\n"
    )
    tests = [CallTest("plain", "plain", (), expected=0), CallTest("unlimited", "unlimited", (), expected=0, time_limit=HANG)]
    res = run_hostile(pool, program, tests)
    assert res.verdicts[0].status == "exception" and res.verdicts[0].message.startswith("RecursionError")
    assert res.verdicts[1].status in {"exception", "crashed", "memory", "timeout"}


def test_generator_and_self_referencing_outputs(pool):
    program = (
        "def gen():\n    return (i for i in range(3))\n"
        "def cyclic_list():\n    x = []\n    x.append(x)\n    return x\n"
        "def cyclic_dict():\n    d = {}\n    d[1] = d\n    return d\n"
    )
    tests = [
        CallTest("gen", "gen", (), expected=[0, 1, 2]),
        CallTest("list", "cyclic_list", (), expected=[[]]),
        CallTest("dict", "cyclic_dict", (), expected={1: {}}),
    ]
    res = run_hostile(pool, program, tests, return_outputs=True)
    assert statuses(res) == ["wrong_answer"] * 3
    assert isinstance(res.outputs[0], Opaque) and res.outputs[0].type_name == "builtins.generator"


def test_huge_output_value(pool):
    """A 50 MB string crosses the pipe and is judged: a pass when it is right, else wrong, never a hang."""
    program = "def f():\n    return 'a' * 50_000_000"
    t0 = time.monotonic()
    res = run_one(pool, program, [CallTest("right", "f", (), expected="a" * 50_000_000), CallTest("wrong", "f", (), expected="b")])
    assert statuses(res) == ["pass", "wrong_answer"]
    assert time.monotonic() - t0 < 10.0
    assert_no_leftovers(pool)


# --------------------------------------------------------------------------------------------------
# Files, environment, network, memory of the parent


def test_writes_outside_the_work_directory_leave_nothing(pool):
    need(pool, "private_tmp", "job_uid")
    shared = Path(tempfile.mkdtemp(prefix="focalpo-open-", dir="/tmp"))
    shared.chmod(0o777)
    name = f"pwned-{uuid.uuid4().hex[:8]}"
    targets = [shared / name, REPO / name, REPO / "tests" / name, Path(os.environ.get("HOME", "/root")) / name, Path("/tmp") / name]
    program = (
        "def f(paths):\n    out = {}\n    for p in paths + ['inside.txt']:\n        try:\n"
        "            with open(p, 'w') as fh:\n                fh.write('x')\n            out[p] = 'written'\n"
        "        except OSError as e:\n            out[p] = type(e).__name__\n    return out"
    )
    try:
        res = run_hostile(pool, program, [CallTest("w", "f", ([str(t) for t in targets],), expected={})], return_outputs=True)
        assert res.outputs[0]["inside.txt"] == "written"  # the work directory is writable
        assert [t for t in targets if t.exists()] == []
        assert list(shared.iterdir()) == []
    finally:
        for t in targets:
            t.unlink(missing_ok=True)
        shared.rmdir()


def test_each_job_gets_the_same_empty_work_directory_as_home_and_tmpdir(pool):
    """Same path every job (a program printing its directory is repeatable), never the files of
    the job before; temporary files go to the private /tmp, as on a host (BigCodeBench tasks
    split tempfile paths and expect no more than /tmp/tmp + 8 characters)."""
    need(pool, "private_tmp")
    program = (
        "import os, tempfile\ndef f():\n    seen = sorted(os.listdir('.')), sorted(os.listdir('/tmp'))\n"
        "    open('left-behind.txt', 'w').write('x')\n    tempfile.mkstemp()\n"
        "    return [os.getcwd(), os.environ['HOME'], os.environ['TMPDIR'], tempfile.gettempdir(), seen]"
    )
    a, b = (run_one(pool, program, [CallTest("t", "f", ())], return_outputs=True).outputs[0] for _ in range(2))
    assert a == b
    assert a[0] == a[1] and a[2] == a[3] == "/tmp"
    assert a[4][0] == [] and not [n for n in a[4][1] if n.startswith("tmp")]  # nothing of the job before


FILL = (
    "import glob, os\n"
    "def fill(d, mib=64):\n"
    "    written, block, errno = 0, b'x' * (1 << 20), 0\n"
    "    try:\n"
    "        for i in range(mib):\n"
    "            with open(os.path.join(d, f'fill-{i}'), 'wb') as f:\n"
    "                f.write(block)\n"
    "            written += len(block)\n"
    "    except OSError as e:\n"
    "        errno = e.errno\n"
    "    for p in glob.glob(os.path.join(d, 'fill-*')):\n"
    "        os.remove(p)\n"
    "    return written >> 20, errno\n"
    "def touch(d, n=5000):\n"
    "    made, errno = 0, 0\n"
    "    try:\n"
    "        for i in range(n):\n"
    "            open(os.path.join(d, f'empty-{i}'), 'w').close()\n"
    "            made += 1\n"
    "    except OSError as e:\n"
    "        errno = e.errno\n"
    "    for p in glob.glob(os.path.join(d, 'empty-*')):\n"
    "        os.remove(p)\n"
    "    return made, errno\n"
)


def test_files_a_job_writes_are_bounded_by_limits_scratch(pool):
    """Files in the private scratch dirs are memory (tmpfs): a job fills at most `Limits.scratch`
    of each, and one file per 16 KiB of it (empty files cost kernel memory, not size), then gets
    ENOSPC, instead of taking the host's RAM. Per-job limits resize them; the next job has the
    pool's size back."""
    need(pool, "private_tmp")
    dirs = ["/tmp", "/var/tmp", "/dev/shm", "."]  # "." (the working dir) is in /tmp
    tests = [CallTest(d, "fill", (d,)) for d in dirs] + [CallTest(f"{d} inodes", "touch", (d,)) for d in dirs]
    small = run_one(pool, FILL, tests, limits=replace(FAST, scratch=8 << 20), return_outputs=True)
    for d, (mib, errno) in zip(dirs, small.outputs):
        assert errno == ENOSPC and 4 <= mib <= 8, (d, mib, errno)
    for d, (made, errno) in zip(dirs, small.outputs[4:]):
        assert errno == ENOSPC and 1000 <= made <= 1024, (d, made, errno)  # 8 MiB / 16 KiB = 512: the floor, 1024
    larger = run_one(pool, FILL, tests, limits=replace(FAST, scratch=24 << 20), return_outputs=True)
    assert [o[1] for o in larger.outputs] == [ENOSPC] * 8, larger.outputs
    assert all(16 <= o[0] <= 24 for o in larger.outputs[:4]) and all(1400 <= o[0] <= 1536 for o in larger.outputs[4:]), larger.outputs
    back = run_one(pool, FILL, tests, return_outputs=True)  # FAST: the default 1 GiB, 65,536 files
    assert [tuple(o) for o in back.outputs] == [(64, 0)] * 4 + [(5000, 0)] * 4, back.outputs
    with pytest.raises(ValueError, match="at least 1 MiB"):
        Limits(scratch=0)  # tmpfs would read size=0 as unbounded


def test_parent_environment_is_invisible(monkeypatch):
    name = f"FOCALPO_SECRET_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(name, "hunter2")
    with ExecPool(workers=1, limits=FAST) as fresh:  # started after the secret was set
        program = '''
import os
def f(name):
    found = [k for k in os.environ if k == name]
    for pid in ["self", "1"] + [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if name.encode() in fh.read():
                    found.append(pid)
        except OSError:
            pass
    return found
'''
        res = run_hostile(fresh, program, [CallTest("env", "f", (name,), expected=["none"])], return_outputs=True)
        assert res.outputs == [[]]
        # and no zygote of this process (their environ is readable by us) ever had it
        zygotes = [pid for pid in os.listdir("/proc") if pid.isdigit() and _is_child_zygote(int(pid))]
        assert zygotes
        for pid in zygotes:
            assert name.encode() not in Path(f"/proc/{pid}/environ").read_bytes()


def _is_child_zygote(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return b"focalpo.sandbox.zygote" in cmdline and ppid == os.getpid()


CONNECT = '''
import socket
def f(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        return "connected"
    except OSError as e:
        return type(e).__name__ + ": " + str(e)
'''


def test_network_connect_fails():
    with socket.socket() as server, ExecPool(workers=1, limits=FAST) as fresh:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        port = server.getsockname()[1]
        need(fresh, "network_disabled")
        res = run_hostile(fresh, CONNECT, [CallTest("net", "f", (port,), expected="connected")], return_outputs=True)
        # the job's 127.0.0.1 is its own namespace's loopback, where nobody listens on that port
        assert res.outputs[0].startswith("ConnectionRefusedError"), res.outputs
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody got through
        # control: the same program connects when the job is given the network
        res = execute(CONNECT, [CallTest("net", "f", (port,), expected="connected")], replace(FAST, network=True))
        assert statuses(res) == ["pass"]


LOCAL_SERVER = '''
import socket, threading
def f():
    server = socket.socket()
    server.bind(("localhost", 0))
    server.listen(1)
    def echo():
        conn, _ = server.accept()
        conn.sendall(conn.recv(16).upper())
        conn.close()
    threading.Thread(target=echo).start()
    with socket.create_connection(server.getsockname(), timeout=2) as c:
        c.sendall(b"ping")
        got = c.recv(16)
    outside = socket.socket()
    outside.settimeout(0.5)
    try:
        outside.connect(("10.255.255.1", 80))
        reached = "connected"
    except OSError as e:
        reached = type(e).__name__
    return got.decode(), reached
'''


def test_jobs_have_a_private_loopback_and_nothing_beyond(pool):
    """A program may serve on localhost and connect to itself (BigCodeBench's echo-server tasks);
    any other address stays unreachable."""
    need(pool, "network_disabled", "loopback")
    res = run_one(pool, LOCAL_SERVER, [CallTest("lo", "f", ())], return_outputs=True)
    assert res.outputs[0] == ("PING", "OSError"), (res.outputs, res.verdicts)
    assert_no_leftovers(pool)


SECRET = f"EXPECTED-{uuid.uuid4().hex}"


def test_expected_outputs_never_reach_the_job(pool, monkeypatch):
    """The job scans every gc-tracked container for the expected value; and everything the parent
    sends to the zygote is checked for it too."""
    sent: list[bytes] = []
    real_send, real_send_raw = sandbox_slot.send_msg, sandbox_slot.send_raw

    def spy(sock, obj, fds=()):
        sent.append(pickle.dumps(obj))
        return real_send(sock, obj, fds)

    def spy_raw(sock, data):  # the job's spec, pickled
        sent.append(bytes(data))
        return real_send_raw(sock, data)

    monkeypatch.setattr(sandbox_slot, "send_msg", spy)
    monkeypatch.setattr(sandbox_slot, "send_raw", spy_raw)
    program = f'''
import gc, sys
# Built at run time (the program text holds it reversed) and kept in one object for the whole job
# (stdio tests run the program again), so that only a copy coming from elsewhere is a find.
NEEDLE = sys.__dict__.setdefault("focalpo_needle", {SECRET[::-1]!r}[::-1])

def scan():
    gc.unfreeze()  # objects the zygote froze are otherwise not listed
    for obj in gc.get_objects():
        try:
            items = list(obj.values()) if isinstance(obj, dict) else list(obj) if isinstance(obj, (list, tuple, set)) else []
        except Exception:
            continue
        for x in items:
            if isinstance(x, str) and NEEDLE in x and x is not NEEDLE:
                return x
    return "not found"

if __name__ == "__main__":
    print(scan())
'''
    tests = [CallTest("call", "scan", (), expected=SECRET), StdioTest("stdio", "", SECRET + "\n")]
    res = run_hostile(pool, program, tests, return_outputs=True)
    assert res.outputs == ["not found", ("not found\n", False)]
    assert sent and any(SECRET[::-1].encode() in blob for blob in sent)  # the spy saw the program
    assert not any(SECRET.encode() in blob for blob in sent)


# --------------------------------------------------------------------------------------------------
# Known isolation gaps


def test_job_sees_only_its_own_processes(pool):
    need(pool, "processes_hidden")
    program = '''
import os
def f(host_pid):
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    try:
        with open(f"/proc/{host_pid}/cmdline", "rb") as fh:
            seen = fh.read().replace(b"\\0", b" ").decode()
    except OSError as e:
        seen = type(e).__name__
    return [pids, seen]
'''
    res = run_one(pool, program, [CallTest("proc", "f", (os.getpid(),))], return_outputs=True)
    pids, seen = res.outputs[0]
    assert len(pids) == 1 and os.getpid() not in pids, pids  # itself only (by its host PID)
    assert seen == "FileNotFoundError"


def test_concurrent_pools_do_not_share_a_job_uid(pool):
    need(pool, "job_uid")
    program = "import os\ndef f():\n    return os.getuid()"
    mine = run_one(pool, program, [CallTest("uid", "f", ())], return_outputs=True).outputs[0]
    other = execute(program, [CallTest("uid", "f", ())], FAST, return_outputs=True).outputs[0]
    assert mine != other


def test_fork_inside_a_test_does_not_disturb_the_next_test(pool):
    program = (
        "import os, time\n"
        "def f():\n    if os.fork() == 0:\n        raise ValueError('child')\n    time.sleep(0.1)\n    raise ValueError('parent')\n"
        "def g():\n    time.sleep(0.3)\n    return 2\n"
    )
    tests = [CallTest("forks", "f", (), expected=1), CallTest("next", "g", (), expected=2), CallTest("after", "g", (), expected=2)]
    res = run_one(pool, program, tests)
    assert_no_leftovers(pool)
    assert statuses(res) == ["exception", "pass", "pass"], res.verdicts
