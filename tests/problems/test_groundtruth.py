"""Tests of `focalpo.problems.groundtruth`: expected outputs and time limits from reference runs, and the cache.

Most tests use `FakePool`, which runs the trusted toy reference programs in-process and reports
fixed durations, so the arithmetic is exact. `test_real_sandbox_*` run HumanEval+/MBPP+ problems in
the real sandbox; the full benchmarks are `@pytest.mark.slow` (measured on 2 cores: HumanEval+
~25 s to fill + ~15 s to re-judge, MBPP+ ~60 s + ~70 s). Run: `pytest tests/problems/test_groundtruth.py -q`
(`-m slow` for the full runs).
"""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import pytest

import focalpo.problems.groundtruth as gt
from focalpo.problems.groundtruth import GroundTruthError, cache_file, fill_expected
from focalpo.problems import Problem, dataset_hash, load_humaneval_plus, load_mbpp_plus
from focalpo.sandbox.types import NO_EXPECTED, CallTest, ExecResult, Verdict
from focalpo.sandbox.wire import Pickled, to_plain

# the shipped data beside the checkout, or wherever $FOCALPO_DATA_DIR says (a clone elsewhere)
DATA = Path(os.environ.get("FOCALPO_DATA_DIR") or Path(__file__).parents[2] / ".." / "shared" / "data")
HEP, MBPP = DATA / "HumanEvalPlus-v0.1.10.jsonl.gz", DATA / "MbppPlus-v0.2.0.jsonl.gz"
needs_data = pytest.mark.skipif(not HEP.is_file(), reason=f"benchmark data not found in {DATA}")


class FakePool:
    """Runs jobs in-process (trusted toy code only); test `name` takes `durations[name]` seconds."""

    def __init__(self, durations: dict[str, float] | None = None):
        self.durations = durations or {}
        self.jobs: list = []

    def map(self, jobs):
        self.jobs += list(jobs)
        return [self._run(job) for job in jobs]

    def _run(self, job) -> ExecResult:
        ns: dict = {}
        try:
            exec(job.program, ns)
        except Exception as e:  # noqa: BLE001
            return ExecResult([Verdict(t.name, "not_run") for t in job.tests], load_error=f"{type(e).__name__}: {e}")
        verdicts, outputs = [], []
        for t in job.tests:
            try:
                outputs.append(to_plain(ns[t.entry_point](*t.args)))
                verdicts.append(Verdict(t.name, "pass", duration=self.durations.get(t.name, 0.01)))
            except Exception as e:  # noqa: BLE001
                outputs.append(None)
                verdicts.append(Verdict(t.name, "exception", f"{type(e).__name__}: {e}"))
        return ExecResult(verdicts, outputs=outputs)


class NoRunPool:
    def map(self, jobs):
        raise AssertionError(f"nothing should run, got {len(jobs)} job(s)")


def _problem(task_id: str, solution: str, entry: str, args: list[tuple], oracle: str | None = None) -> Problem:
    tests = [CallTest(f"base/{i}", entry, a, NO_EXPECTED, 0.0, oracle) for i, a in enumerate(args)]
    return Problem(task_id, "", entry, solution, {"base": tests})


ADD = _problem("T/add", "def add(a, b):\n    return a + b\n", "add", [(1, 2), ([1], [2]), ("a", "b")])
DIV = _problem("T/div", "def div(a, b):\n    return a // b\n", "div", [(7, 2), (1, 0)])
MATCH = _problem("T/re", "import re\ndef m(s):\n    return re.match('a', s)\n", "m", [("abc",), ("xyz",)], "not_none")
GEN = _problem("T/gen", "def g(n):\n    return (i for i in range(n))\n", "g", [(3,)])


@pytest.fixture
def dataset(tmp_path) -> Path:
    f = tmp_path / "data.jsonl"
    f.write_text('{"toy": 1}\n')
    return f


def test_expected_and_time_limits(dataset, tmp_path):
    pool = FakePool({"base/0": 0.01, "base/1": 0.5, "base/2": 0.3})
    (add,) = fill_expected([ADD], dataset, pool=pool, cache_dir=tmp_path / "c")
    tests = add.tests["base"]
    assert [t.expected.value for t in tests] == [3, [1, 2], "ab"]  # kept pickled: wire.Pickled
    assert all(isinstance(t.expected, Pickled) for t in tests)
    # time_limit = max(min_time_limit=1.0, 4.0 * t_ref): 0.04 -> 1.0, 2.0, 1.2
    assert [t.time_limit for t in tests] == [1.0, 2.0, 1.2]
    (add,) = fill_expected([ADD], dataset, pool=pool, cache_dir=tmp_path / "c", min_time_limit=0.1, time_factor=10.0)
    assert [t.time_limit for t in add.tests["base"]] == [0.1, 5.0, 3.0]
    assert ADD.tests["base"][0].expected is NO_EXPECTED  # the input problems are not modified


def test_prepared_ground_truth_fills_one_problem_at_a_time(dataset, tmp_path):
    """`prepare_expected` runs and caches everything up front; `apply` then fills a problem as
    `fill_expected` would, and `reference_seconds` is what its tests took in the reference run."""
    pool = FakePool({"base/0": 0.25, "base/1": 0.5, "base/2": 0.125})
    truth = gt.prepare_expected([ADD, DIV], dataset, pool=pool, cache_dir=tmp_path, on_failure="drop")
    assert len(pool.jobs) == 2
    assert truth.reference_seconds("T/add") == 0.875 and truth.reference_seconds("T/div") == 0.25  # 1 // 0 dropped
    assert [truth.apply(p) for p in (ADD, DIV)] == fill_expected([ADD, DIV], dataset, pool=NoRunPool(), cache_dir=tmp_path, on_failure="drop")
    add = truth.apply(ADD)
    assert sum(add.meta["ref_seconds"].values()) == truth.reference_seconds("T/add")
    assert truth.reference_seconds("T/unknown") == 0


def test_not_none_transform_turns_match_objects_into_bools(dataset, tmp_path):
    (m,) = fill_expected([MATCH], dataset, pool=FakePool(), cache_dir=tmp_path)
    assert [t.expected.value for t in m.tests["base"]] == [True, False]


def test_failing_reference_names_task_and_test(dataset, tmp_path):
    with pytest.raises(GroundTruthError) as info:
        fill_expected([ADD, DIV, GEN], dataset, pool=FakePool(), cache_dir=tmp_path)
    msg = str(info.value)
    assert "2 reference test(s) failed, in T/div (1), T/gen (1)" in msg
    assert "T/div base/1: exception: ZeroDivisionError" in msg
    assert "T/gen base/0: returned a builtins.generator, which is not a plain value" in msg


def test_load_error_fails_every_test(dataset, tmp_path):
    broken = _problem("T/broken", "def f(:\n", "f", [(1,), (2,)])
    with pytest.raises(GroundTruthError, match=r"T/broken base/1: the program failed to load: SyntaxError"):
        fill_expected([broken], dataset, pool=FakePool(), cache_dir=tmp_path)


def test_drop_removes_failing_tests_and_records_them(dataset, tmp_path):
    add, div = fill_expected([ADD, DIV], dataset, pool=FakePool(), cache_dir=tmp_path, on_failure="drop")
    assert "dropped_tests" not in add.meta and len(add.tests["base"]) == 3
    assert [(t.name, t.expected.value) for t in div.tests["base"]] == [("base/0", 3)]
    assert div.meta["dropped_tests"] == {"base/1": "exception: ZeroDivisionError: integer division or modulo by zero"}
    with pytest.raises(ValueError, match="on_failure must be"):
        fill_expected([ADD], dataset, pool=FakePool(), on_failure="ignore")


def test_cache_is_reused_and_merged(dataset, tmp_path):
    cache = tmp_path / "cache"
    first = fill_expected([ADD], dataset, pool=FakePool(), cache_dir=cache)
    path = cache_file(dataset, cache)
    assert path == cache / f"{dataset_hash(dataset)}-{gt.GT_VERSION}.base.pkl"
    cached = gt.load_cache(path)  # expected outputs are stored as their pickles
    assert {t: (pickle.loads(b), dt) for t, (b, dt) in cached["T/add"].items()} == {
        "base/0": (3, 0.01), "base/1": ([1, 2], 0.01), "base/2": ("ab", 0.01)
    }  # fmt: skip
    assert set(cached) == {"T/add"}
    assert fill_expected([ADD], dataset, pool=NoRunPool(), cache_dir=cache) == first
    pool = FakePool()
    both = fill_expected([ADD, MATCH], dataset, pool=pool, cache_dir=cache)
    assert [j.program for j in pool.jobs] == [MATCH.reference_program()]  # only the missing task ran
    assert both[0] == first[0] and set(gt.load_cache(path)) == {"T/add", "T/re"}
    assert not list(cache.glob("*.tmp"))


def test_splits_are_cached_and_filled_separately(dataset, tmp_path):
    """A base-only run computes, caches and reads only the base split (plus outputs can be
    hundreds of MB); a later full run computes just the plus tests."""
    two = _problem("T/two", "def add(a, b):\n    return a + b\n", "add", [(1, 2)])
    plus = [CallTest("plus/0", "add", (3, 4)), CallTest("plus/1", "add", ("x", "y"))]
    two = Problem(two.task_id, "", "add", two.canonical_solution, {"base": two.tests["base"], "plus": plus})
    pool = FakePool()
    (base_only,) = fill_expected([two], dataset, pool=pool, cache_dir=tmp_path, splits=["base"])
    assert [t.name for j in pool.jobs for t in j.tests] == ["base/0"]
    assert base_only.tests["base"][0].expected.value == 3
    assert [t.expected for t in base_only.tests["plus"]] == [NO_EXPECTED, NO_EXPECTED]
    assert cache_file(dataset, tmp_path, "base").is_file() and not cache_file(dataset, tmp_path, "plus").exists()
    pool = FakePool()
    (full,) = fill_expected([two], dataset, pool=pool, cache_dir=tmp_path)
    assert [t.name for j in pool.jobs for t in j.tests] == ["plus/0", "plus/1"]
    assert [t.expected.value for t in full.tests["plus"]] == [7, "xy"]
    assert set(gt.load_cache(cache_file(dataset, tmp_path, "plus"))["T/two"]) == {"plus/0", "plus/1"}
    assert fill_expected([two], dataset, pool=NoRunPool(), cache_dir=tmp_path) == [full]


def test_big_expected_outputs_are_mapped_from_a_side_file(dataset, tmp_path):
    """Pickles of BLOB_BYTES or more live in `<cache>.<random>.blob`: loading maps them (views,
    no copy) and they judge like bytes; a merge rewrites the pair and drops the old side file;
    a missing or short side file makes the whole split recomputed, never half-read."""
    big = _problem("T/big", "def f(n):\n    return list(range(n))\n", "f", [(3,), (50_000,)])
    (first,) = fill_expected([big], dataset, pool=FakePool(), cache_dir=tmp_path)
    path = cache_file(dataset, tmp_path)
    (blob,) = tmp_path.glob(path.name + ".*.blob")
    loaded = gt.load_cache(path)["T/big"]
    assert type(loaded["base/0"][0]) is bytes and type(loaded["base/1"][0]) is memoryview
    assert loaded["base/1"][0].readonly and blob.stat().st_size == len(loaded["base/1"][0]) >= gt.BLOB_BYTES
    (again,) = fill_expected([big], dataset, pool=NoRunPool(), cache_dir=tmp_path)
    assert again == first and again.tests["base"][1].expected.value == list(range(50_000))
    both = fill_expected([big, ADD], dataset, pool=FakePool(), cache_dir=tmp_path)
    (blob2,) = tmp_path.glob(path.name + ".*.blob")
    assert blob2 != blob and both[0] == first and set(gt.load_cache(path)) == {"T/big", "T/add"}
    blob2.write_bytes(blob2.read_bytes()[:-1])
    assert gt.load_cache(path) == {}
    blob2.unlink()
    pool = FakePool()
    assert fill_expected([big], dataset, pool=pool, cache_dir=tmp_path) == [first] and len(pool.jobs) == 1


def test_failures_are_cached_until_the_sandbox_changes(dataset, tmp_path, monkeypatch):
    with pytest.raises(GroundTruthError):
        fill_expected([DIV], dataset, pool=FakePool(), cache_dir=tmp_path)
    failures = json.loads(gt._failures_path(dataset, tmp_path).read_text())
    assert failures["failures"] == {"T/div": {"base/1": "exception: ZeroDivisionError: integer division or modulo by zero"}}
    (div,) = fill_expected([DIV], dataset, pool=NoRunPool(), cache_dir=tmp_path, on_failure="drop")
    assert list(div.meta["dropped_tests"]) == ["base/1"]
    monkeypatch.setattr(gt, "sandbox_fingerprint", lambda: "another sandbox")
    pool = FakePool()
    with pytest.raises(GroundTruthError):
        fill_expected([DIV], dataset, pool=pool, cache_dir=tmp_path)
    assert len(pool.jobs) == 1  # retried


def test_bad_cache_files_are_recomputed(dataset, tmp_path):
    path = cache_file(dataset, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a pickle")
    pool = FakePool()
    fill_expected([ADD], dataset, pool=pool, cache_dir=tmp_path)
    assert len(pool.jobs) == 1
    # A cache holding anything but plain values (here: a callable) is refused, never unpickled.
    path.write_bytes(pickle.dumps({"T/add": {"base/0": (os.getcwd, 0.1)}}))
    assert gt.load_cache(path) == {}


def test_env_cache_dir_and_no_cache(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("FOCALPO_CACHE", str(tmp_path / "root"))
    assert gt.default_cache_dir() == tmp_path / "root" / "groundtruth"
    fill_expected([ADD], dataset, pool=FakePool())
    assert (tmp_path / "root" / "groundtruth" / cache_file(dataset).name).is_file()
    fill_expected([MATCH], None, pool=FakePool())
    assert len(list((tmp_path / "root" / "groundtruth").iterdir())) == 1


def test_tests_with_expected_outputs_are_left_alone(dataset, tmp_path):
    done = Problem("T/done", "", "f", "def f():\n    return 1\n", {"base": [CallTest("c", "f", (), 2, time_limit=9.0)]})
    (same,) = fill_expected([done], dataset, pool=NoRunPool(), cache_dir=tmp_path)
    assert same == done


def test_self_check_flags_nan_expected():
    nan = _problem("T/nan", "def f():\n    return float('nan')\n", "f", [()])
    bad = gt.self_check(nan, {"base/0": (pickle.dumps(float("nan")), 0.0)})
    assert [(b.task_id, b.test) for b in bad] == [("T/nan", "base/0")]
    assert gt.self_check(ADD, {"base/0": (pickle.dumps(3), 0.0)}) == []


# ----------------------------------------------------------------------------------------------
# The real sandbox


def _rejudge(problems: list[Problem], pool) -> list[str]:
    """Names of tests the reference programs fail when judged against the filled expectations."""
    from focalpo.sandbox import Job

    results = pool.map([Job(p.reference_program(), p.all_tests()) for p in problems])
    return [f"{p.task_id} {v.name}: {v.status} {v.message}" for p, r in zip(problems, results) for v in r.verdicts if not v.passed]


@needs_data
def test_real_sandbox_handful_of_problems(tmp_path):
    from focalpo.sandbox import ExecPool, Job

    he = {p.task_id: p for p in load_humaneval_plus(HEP)}
    mb = {p.task_id: p for p in load_mbpp_plus(MBPP)}
    he_ids = ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    mb_ids = ["Mbpp/2", "Mbpp/124", "Mbpp/558", "Mbpp/581", "Mbpp/737"]
    with ExecPool(workers=2) as pool:
        he_f = {p.task_id: p for p in fill_expected([he[i] for i in he_ids], HEP, pool=pool, cache_dir=tmp_path)}
        mb_f = {p.task_id: p for p in fill_expected([mb[i] for i in mb_ids], MBPP, pool=pool, cache_dir=tmp_path)}
        assert he_f["HumanEval/0"].tests["base"][0].expected.value is True
        assert he_f["HumanEval/2"].tests["base"][0].expected.value == 0.5
        assert he_f["HumanEval/32"].tests["base"][0].expected.value == -5.0  # any root passes "poly_root"
        assert mb_f["Mbpp/124"].tests["base"][0].expected.value == pytest.approx(1.5707963267948966)
        assert mb_f["Mbpp/2"].tests["base"][0].expected.value == (4, 5)
        assert mb_f["Mbpp/581"].tests["base"][0].expected.value == 33
        assert {t.expected.value for t in mb_f["Mbpp/737"].call_tests()} <= {True, False}  # re.Match -> not None
        filled = list(he_f.values()) + list(mb_f.values())
        assert all(t.expected is not NO_EXPECTED and t.time_limit >= 1.0 for p in filled for t in p.call_tests())
        assert _rejudge(filled, pool) == []
        # A wrong program is caught by the filled expectations.
        wrong = he_f["HumanEval/0"].prompt + "    return False\n"
        (r,) = pool.map([Job(wrong, he_f["HumanEval/0"].all_tests())])
        assert 0 < sum(v.passed for v in r.verdicts) < len(r.verdicts)


@pytest.mark.slow
@needs_data
def test_real_sandbox_all_of_humaneval_plus(tmp_path):
    from focalpo.sandbox import ExecPool

    with ExecPool() as pool:
        t0 = time.perf_counter()
        filled = fill_expected(load_humaneval_plus(HEP), HEP, pool=pool, cache_dir=tmp_path)
        fill_s = time.perf_counter() - t0
        assert sum(len(p.call_tests()) for p in filled) == 1570 + 123739
        assert _rejudge(filled, pool) == []
    print(f"HumanEval+ ground truth: {fill_s:.1f}s")


# Reference runs that the sandbox (not the data) cannot handle yet: Mbpp/88 returns a
# collections.Counter (a dict subclass, sent back as an opaque object); Mbpp/255 plus/85 returns
# 1.66M tuples (a 261 MB pickle, over the sandbox's 256 MiB frame limit).
KNOWN_SANDBOX_GAPS = {"Mbpp/88", "Mbpp/255"}


@pytest.mark.slow
@needs_data
def test_real_sandbox_all_of_mbpp_plus(tmp_path):
    from focalpo.sandbox import ExecPool

    with ExecPool() as pool:
        filled = fill_expected(load_mbpp_plus(MBPP), MBPP, pool=pool, cache_dir=tmp_path, on_failure="drop")
        dropped = {p.task_id for p in filled if "dropped_tests" in p.meta}
        assert dropped <= KNOWN_SANDBOX_GAPS
        fails = _rejudge([p for p in filled if p.task_id not in KNOWN_SANDBOX_GAPS], pool)
        assert fails == []
