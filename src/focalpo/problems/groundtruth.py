"""Expected outputs and time limits of call tests, from running the reference solutions.

HumanEval+ and MBPP+ ship inputs, not outputs: like evalplus, `fill_expected` runs each problem's
reference program (`Problem.reference_program()`) on its call tests that have no expected output,
in the sandbox with `return_outputs=True`, and sets on every such test

    expected   = GROUND_TRUTH_TRANSFORMS[oracle](output) if the oracle has one, else output
    time_limit = max(min_time_limit, time_factor * t_ref)   # evalplus: max(1.0, 4.0 * t_ref)

where t_ref is that test's duration in the reference run.

Cache, in `cache_dir` (default `$FOCALPO_CACHE/groundtruth`, else `~/.cache/focalpo/groundtruth`),
named by the sha256 of the dataset file and `GT_VERSION`:
- `<hash>-<version>.<split>.pkl`, one per test split ("base", "plus"), so that a base-only run
  never reads the (hundreds of MB of) plus outputs: `{task_id: {test_name: (pickle of expected,
  t_ref)}}`, read back with the sandbox's restricted unpickler (plain values only). Expected
  outputs stay pickled in memory too (`focalpo.sandbox.wire.Pickled`): a candidate's output is
  compared as bytes first, so loading the cache and judging passing tests decode nothing;
- `<hash>-<version>.<split>.pkl.<random>.blob`: the pickles of `BLOB_BYTES` or more, back to
  back, named by the `.pkl` (which holds their offsets). They are memory-mapped, not read: MBPP+'s
  Mbpp/255 alone has 342 MB of them, and loading no longer waits for them;
- `<hash>-<version>.failures.json`: tests whose reference run failed, `{task_id: {test: reason}}`,
  stamped with a fingerprint of the sandbox's source so they are retried once the sandbox changes.
All are written atomically (temporary file + `os.replace`). Problems missing from the cache are
computed and merged in, so a subset can be filled first and the rest later.

`prepare_expected` does all of this but the filling itself: it returns a `GroundTruth` that fills
one problem at a time, so that `focalpo eval` runs a task's samples while it fills the next task.

Run: `fill_expected(load_mbpp_plus(path), path)` (timings in tests/problems/test_groundtruth.py).

Over 400 lines on purpose: the filling and the cache layout above are one contract, versioned
together by `GT_VERSION`.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import mmap
import os
import pickle
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from focalpo.io import atomic_path, atomic_write_bytes, cache_root
from focalpo.problems import Problem, dataset_hash
from focalpo.problems.oracles import GROUND_TRUTH_TRANSFORMS
from focalpo.sandbox.judge import judge_call
from focalpo.sandbox.types import NO_EXPECTED, CallTest, ExecResult, Limits
from focalpo.sandbox.wire import Opaque, Pickled, safe_loads

if TYPE_CHECKING:
    from focalpo.sandbox import ExecPool

GT_VERSION = "gt4"  # bump when loaders change how inputs are built, how jobs pickle outputs, or the cache layout
# Reference runs get generous limits: their measured time becomes the candidates' limit.
REFERENCE_LIMITS = Limits(test_time=60.0, load_time=60.0)
BLOB_BYTES = 1 << 16  # expected outputs this big are cached in the side file (see save_cache)
Entry = dict[str, tuple[bytes | memoryview, float]]  # test name -> (pickle of expected, t_ref)
Entries = dict[str, Entry]  # task_id -> Entry
Failures = dict[str, dict[str, str]]  # task_id -> test name -> reason


class GroundTruthError(RuntimeError):
    """A reference solution failed on (or returned an unusable value for) its own tests."""


@dataclass(frozen=True)
class RefFailure:
    task_id: str
    test: str
    reason: str

    def __str__(self) -> str:
        return f"{self.task_id} {self.test}: {self.reason}"


def default_cache_dir() -> Path:
    return cache_root() / "groundtruth"


def cache_file(dataset_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, split: str = "base") -> Path:
    """Where the ground truth of one split of this dataset file is cached."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / f"{dataset_hash(dataset_path)}-{GT_VERSION}.{split}.pkl"


def pending_tests(problem: Problem, splits: Sequence[str] | None = None) -> list[CallTest]:
    """The problem's call tests (of `splits`, default all) that still lack an expected output."""
    names = problem.tests if splits is None else [s for s in splits if s in problem.tests]
    return [t for s in names for t in problem.tests[s] if isinstance(t, CallTest) and t.expected is NO_EXPECTED]


def fill_expected(problems: Sequence[Problem], dataset_path: str | os.PathLike | None, **options: Any) -> list[Problem]:
    """New problems whose pending call tests have `expected` and `time_limit` set (see module doc).

    `options` are `prepare_expected`'s (pool, splits, cache, time limits, `on_failure`): this is
    `prepare_expected` followed by `GroundTruth.apply` on every problem.
    """
    truth = prepare_expected(problems, dataset_path, **options)
    return [truth.apply(p) for p in problems]


@dataclass
class GroundTruth:
    """The expected outputs and reference times of some problems' call tests, ready to be set on
    them one problem at a time (`apply`): `focalpo eval` starts running a problem's samples
    before it has filled the next problem's tests."""

    entries: dict[str, Entries]  # split -> task_id -> test name -> (pickle of expected, t_ref)
    dropped: Failures  # task_id -> the tests whose reference run failed, with why
    splits: list[str]
    min_time_limit: float
    time_factor: float

    def reference_seconds(self, task_id: str) -> float:
        """The reference run's seconds, summed over this task's tests (of `splits`)."""
        return sum(t_ref for split in self.splits for _, t_ref in self.entries[split].get(task_id, {}).values())

    def apply(self, problem: Problem) -> Problem:
        """`problem` with its pending call tests filled (see `apply_entries`)."""
        entry = _entry_of(problem.task_id, self.entries)
        dropped = self.dropped.get(problem.task_id)
        return apply_entries(problem, entry, self.min_time_limit, self.time_factor, dropped, self.splits)


def prepare_expected(
    problems: Sequence[Problem],
    dataset_path: str | os.PathLike | None,
    *,
    pool: ExecPool | None = None,
    splits: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    min_time_limit: float = 1.0,
    time_factor: float = 4.0,
    limits: Limits = REFERENCE_LIMITS,
    on_failure: str = "raise",
    refresh: bool = False,
) -> GroundTruth:
    """Everything `fill_expected` does but the filling: loads the cache, runs the reference
    programs on the tests it lacks (and caches them), applies `on_failure`, and returns the
    `GroundTruth` that fills each problem.

    Only tests of `splits` (default: every split) are filled; the others are left as they are.
    `dataset_path=None` disables the cache; `refresh=True` ignores what is cached. When a
    reference program fails a test (or returns a value that cannot be an expected output),
    `on_failure="raise"` raises `GroundTruthError` naming every such task and test (after caching
    what succeeded); `"drop"` removes those tests and records them in
    `problem.meta["dropped_tests"]` ({name: reason}).
    """
    if on_failure not in ("raise", "drop"):
        raise ValueError(f"on_failure must be 'raise' or 'drop', got {on_failure!r}")
    wanted = list(splits) if splits is not None else sorted({s for p in problems for s in p.tests})
    paths = {s: cache_file(dataset_path, cache_dir, s) for s in wanted} if dataset_path is not None else {}
    cached = bool(paths) and not refresh
    entries: dict[str, Entries] = {s: load_cache(paths[s]) if cached else {} for s in wanted}
    failures = load_failures(_failures_path(dataset_path, cache_dir)) if cached else {}
    unknown = {p.task_id: _unknown_tests(p, wanted, entries, failures) for p in problems}
    todo = [p for p in problems if unknown[p.task_id]]
    if todo:
        computed, new_failures = compute_reference(todo, pool=pool, limits=limits, tests=unknown)
        for f in new_failures:
            failures.setdefault(f.task_id, {})[f.test] = f.reason
        changed = _merge(todo, wanted, computed, entries)
        for split in changed & set(paths):
            save_cache(paths[split], entries[split])
        if paths:
            save_failures(_failures_path(dataset_path, cache_dir), failures)
    dropped = {p.task_id: _relevant(p, wanted, failures) for p in problems}
    if on_failure == "raise" and any(dropped.values()):
        raise GroundTruthError(_failure_report(dropped))
    return GroundTruth(entries, dropped, wanted, min_time_limit, time_factor)


def _entry_of(task_id: str, entries: dict[str, Entries]) -> Entry:
    return {name: e for split in entries.values() for name, e in split.get(task_id, {}).items()}


def _merge(problems: Sequence[Problem], splits: list[str], computed: Entries, entries: dict[str, Entries]) -> set[str]:
    """File newly computed entries under their split; returns the splits that changed."""
    changed = set()
    for p in problems:
        got = computed.get(p.task_id, {})
        for split in splits:
            part = {t.name: got[t.name] for t in p.tests.get(split, ()) if t.name in got}
            if part:
                entries[split][p.task_id] = {**entries[split].get(p.task_id, {}), **part}
                changed.add(split)
    return changed


def _unknown_tests(problem: Problem, splits: list[str], entries: dict[str, Entries], failures: Failures) -> list[CallTest]:
    """Pending tests of `splits` that are neither cached nor recorded as failed."""
    failed = failures.get(problem.task_id, {})
    return [
        t
        for split in splits
        for t in pending_tests(problem, [split])
        if t.name not in entries[split].get(problem.task_id, {}) and t.name not in failed
    ]


def _relevant(problem: Problem, splits: list[str], failures: Failures) -> dict[str, str]:
    failed = failures.get(problem.task_id, {})
    return {t.name: failed[t.name] for t in pending_tests(problem, splits) if t.name in failed}


def _failure_report(dropped: Failures, limit: int = 20) -> str:
    items = [RefFailure(task, test, why) for task, tests in dropped.items() for test, why in tests.items()]
    tasks = ", ".join(f"{t} ({len(tests)})" for t, tests in dropped.items() if tests)
    shown = "\n  ".join(map(str, items[:limit]))
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} reference test(s) failed, in {tasks}:\n  {shown}{more}"


def compute_reference(
    problems: Sequence[Problem],
    *,
    pool: ExecPool | None = None,
    limits: Limits = REFERENCE_LIMITS,
    tests: Mapping[str, Sequence[CallTest]] | None = None,
) -> tuple[Entries, list[RefFailure]]:
    """Run reference programs on `tests[task_id]` (default: all their pending tests).

    Returns (entries of the tests that succeeded, failures)."""
    from focalpo.sandbox import ExecPool, Job  # the sandbox is only needed when something runs

    jobs = [
        Job(p.reference_program(), tests[p.task_id] if tests is not None else pending_tests(p), limits, return_outputs=True)
        for p in problems
    ]
    if pool is None:
        with ExecPool(limits=limits) as own_pool:
            results = own_pool.map(jobs)
    else:
        results = pool.map(jobs)
    entries: Entries = {}
    failures: list[RefFailure] = []
    for problem, job, result in zip(problems, jobs, results):
        entries[problem.task_id], bad = reference_entry(problem.task_id, job.tests, result)
        failures += bad
    return entries, failures


def reference_entry(task_id: str, tests: Sequence[CallTest], result: ExecResult) -> tuple[Entry, list[RefFailure]]:
    """(test name -> (expected, t_ref), failures: one per test without usable ground truth)."""
    if result.load_error:
        return {}, [RefFailure(task_id, t.name, f"the program failed to load: {result.load_error}") for t in tests]
    outputs = result.outputs if result.outputs is not None else []
    entry: Entry = {}
    failures: list[RefFailure] = []
    for i, test in enumerate(tests):
        if i >= len(result.verdicts) or i >= len(outputs):
            failures.append(RefFailure(task_id, test.name, "the sandbox returned no verdict or output"))
            continue
        verdict, output = result.verdicts[i], outputs[i]
        reason = _unusable(test, verdict.status, verdict.message, output)
        if reason:
            failures.append(RefFailure(task_id, test.name, reason))
            continue
        transform = GROUND_TRUTH_TRANSFORMS.get(test.oracle or "")
        expected = transform(output) if transform else output
        entry[test.name] = (Pickled.of(expected).data, verdict.duration)
    return entry, failures


def _unusable(test: CallTest, status: str, message: str, output: Any) -> str:
    """Why a reference verdict/output cannot be ground truth ("" when it can)."""
    if status != "pass":
        return f"{status}: {message}" if message else status
    if isinstance(output, Opaque) and test.oracle not in GROUND_TRUTH_TRANSFORMS:
        return f"returned a {output.type_name}, which is not a plain value"
    return ""


def apply_entries(
    problem: Problem,
    entry: Entry,
    min_time_limit: float,
    time_factor: float,
    dropped: dict[str, str] | None = None,
    splits: Sequence[str] | None = None,
) -> Problem:
    """A copy of `problem` whose pending call tests (of `splits`, default all) take their expected
    output and time limit.

    Tests named in `dropped` are removed (and recorded in `meta["dropped_tests"]`).
    """
    dropped = dropped or {}
    wanted = set(problem.tests if splits is None else splits)

    ref_seconds: dict[str, float] = {}

    def fill(test):
        if not isinstance(test, CallTest) or test.expected is not NO_EXPECTED:
            return test
        if test.name not in entry:
            raise GroundTruthError(f"{problem.task_id} {test.name}: no ground truth computed")
        expected, t_ref = entry[test.name]
        ref_seconds[test.name] = t_ref
        return test.with_expected(Pickled(expected), max(min_time_limit, time_factor * t_ref))

    tests = {
        split: [fill(t) for t in ts if t.name not in dropped] if split in wanted else list(ts)
        for split, ts in problem.tests.items()
    }
    meta = problem.meta
    if ref_seconds or dropped:
        meta = dict(meta)
    if ref_seconds:
        meta["ref_seconds"] = ref_seconds  # focalpo.eval.jobs splits heavy test lists with it
    if dropped:
        meta["dropped_tests"] = dict(dropped)
    return dataclasses.replace(problem, tests=tests, meta=meta)


def self_check(problem: Problem, entry: Entry) -> list[RefFailure]:
    """Tests whose ground truth the reference's own output would fail when judged (e.g. NaN)."""
    bad = []
    for test in pending_tests(problem):
        if test.name in entry and test.oracle not in GROUND_TRUTH_TRANSFORMS:
            expected = Pickled(entry[test.name][0]).value
            ok, why = judge_call(dataclasses.replace(test, expected=expected), expected)
            if not ok:
                bad.append(RefFailure(problem.task_id, test.name, why))
    return bad


# --------------------------------------------------------------------------------------------------
# Cache files


def load_cache(path: Path) -> Entries:
    """Cached entries, or {} when absent or unreadable (they are then recomputed and rewritten).

    Big expected outputs come back as read-only views of the memory-mapped side file: loading
    copies none of their bytes, and a run reads only the pages of the tests it judges."""
    try:
        data = safe_loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict) or not isinstance(data.get("big"), list):
        return {}
    entries, big = data["entries"], data["big"]
    if not big:
        return entries
    view = _map_blob(path, data.get("blob"), data.get("size"))
    if view is None:
        return {}
    try:
        for task_id, name, offset, length in big:
            if not (isinstance(offset, int) and isinstance(length, int) and 0 <= offset <= offset + length <= len(view)):
                return {}
            entries[task_id][name] = (view[offset : offset + length], entries[task_id][name][1])
    except (KeyError, TypeError, ValueError, IndexError):
        return {}
    return entries


def _map_blob(path: Path, name: Any, size: Any) -> memoryview | None:
    if not isinstance(name, str) or not name.startswith(path.name + ".") or "/" in name or not isinstance(size, int):
        return None
    try:
        with open(path.with_name(name), "rb") as f:
            if os.fstat(f.fileno()).st_size != size or size == 0:
                return None
            return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    except (OSError, ValueError):
        return None


def save_cache(path: Path, entries: Entries) -> None:
    """Write the cache: small expected outputs in `path`, those of BLOB_BYTES or more back to back
    in a side file `<path name>.<random>.blob` that `path` names (written first, both atomically),
    so that loading maps them instead of reading hundreds of MB. Older side files are removed."""
    small: Entries = {}
    big: list[tuple[str, str, int, int]] = []
    chunks: list = []
    offset = 0
    for task_id, entry in entries.items():
        small[task_id] = {}
        for name, (data, t_ref) in entry.items():
            if len(data) >= BLOB_BYTES:
                big.append((task_id, name, offset, len(data)))
                chunks.append(data)
                offset += len(data)
                data = b""
            small[task_id][name] = (bytes(data), t_ref)
    blob = f"{path.name}.{secrets.token_hex(6)}.blob" if big else None
    if blob is not None:
        with atomic_path(path.with_name(blob)) as tmp, open(tmp, "wb") as f:
            for data in chunks:
                f.write(data)
    atomic_write_bytes(path, pickle.dumps({"entries": small, "big": big, "blob": blob, "size": offset}, protocol=pickle.HIGHEST_PROTOCOL))
    for old in path.parent.glob(glob.escape(path.name) + ".*.blob"):
        if old.name != blob:
            old.unlink(missing_ok=True)  # a mapping of it (in this or another process) stays valid


def _failures_path(dataset_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    base = cache_file(dataset_path, cache_dir, "base")
    return base.with_name(base.name.removesuffix(".base.pkl") + ".failures.json")


def sandbox_fingerprint() -> str:
    """sha256 of the sandbox package's source: cached failures are retried when it changes."""
    import focalpo.sandbox as sandbox

    h = hashlib.sha256()
    for f in sorted(Path(sandbox.__file__).parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def load_failures(path: Path) -> Failures:
    """Cached failures recorded under the current sandbox, else {}."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("sandbox") != sandbox_fingerprint():
        return {}
    failures = data.get("failures")
    return failures if isinstance(failures, dict) else {}


def save_failures(path: Path, failures: Failures) -> None:
    if failures or path.exists():
        data = {"sandbox": sandbox_fingerprint(), "failures": failures}
        atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())
