"""Scheduling: runs many jobs on a pool of sandbox slots, costliest first, with a progress bar.

`ExecPool` starts one `Slot` (`focalpo.sandbox.slot`: a zygote and the jobs it forks) per worker
and one thread per slot taking jobs from a shared queue (`_Pending`), longest first; `execute`
runs a single job on a lazily started one-slot pool. Jobs are judged in this process, by the
slots (`focalpo.sandbox.attempt`, `focalpo.sandbox.judge`).
"""

from __future__ import annotations

import atexit
import functools
import heapq
import os
import threading
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Sized

from focalpo.sandbox.environment import ModuleCheck
from focalpo.sandbox.jobfiles import PROGRAM_MODULE
from focalpo.sandbox.slot import ON_DEMAND_PRELOAD, Slot
from focalpo.sandbox.types import ExecResult, Job, Limits, SandboxError, Status, TestCase, TimeBudget, Verdict

__all__ = ["DEFAULT_PRELOAD", "ON_DEMAND_PRELOAD", "ExecPool", "Job", "SandboxError", "TimeBudget", "execute"]

DEFAULT_PRELOAD = (
    "math", "cmath", "re", "string", "collections", "itertools", "functools", "heapq", "bisect",
    "typing", "copy", "random", "statistics", "hashlib", "datetime", "fractions", "decimal",
    "operator", "json", "unittest",
)  # fmt: skip


class ExecPool:
    """Runs many jobs on `workers` sandbox slots (default: all cores), judging in this process.

    >>> with ExecPool(workers=2) as pool:
    ...     results = pool.map([Job(program, tests), ...])

    `preload`: modules every zygote imports at start, so jobs find them warm. `on_demand`: modules
    a zygote imports just before the first job whose program text mentions them (a cheap
    substring test: a program that imports one by a computed name imports it itself, cold).
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits = Limits(),
        preload: Sequence[str] = DEFAULT_PRELOAD,
        progress: str | None = None,
        on_demand: Sequence[str] = ON_DEMAND_PRELOAD,
    ):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.limits = limits
        self.progress = progress
        # The zygotes start side by side and in the background: the first job (or `isolation`)
        # waits for them, so a caller can load its data meanwhile.
        self._slots = [
            Slot(i, limits.network, preload, wait=False, on_demand=on_demand, scratch=limits.scratch)
            for i in range(self.workers)
        ]
        self._modules = ModuleCheck()  # a module a job could not import: missing here, or a fault?

    @property
    def isolation(self) -> dict:
        return self._slots[0].isolation

    def imap(self, jobs: Iterable[Job]) -> Iterator[tuple[int, ExecResult]]:
        """Yields (job index, result) as jobs finish, in completion order.

        Jobs are started in decreasing `cost` order (stable), so the longest ones do not end up
        alone at the tail of the run while other workers idle.
        """
        import queue

        pending = _Pending()
        for job in jobs:
            pending.add(job)
        pending.close()
        done: queue.Queue = queue.Queue()
        self._start(pending, lambda i, r: done.put((i, r)))
        for _ in range(pending.added):
            i, r = done.get()
            if i < 0:
                raise r
            yield i, r

    def _start(self, pending: _Pending, deliver: Callable[[int, Any], None]) -> list[threading.Thread]:
        """Start one thread per slot working through `pending`, costly jobs first, until it is
        closed and empty. Each thread calls deliver(index, result) itself as a job finishes, or
        deliver(-1, exception) and stops; once a job raised, no thread starts another. Returns
        the threads."""
        if not self._slots:
            raise SandboxError("the pool is closed")
        lock = threading.Lock()
        failed_groups: set = set()

        def worker(slot: Slot) -> None:
            while True:
                item = pending.take()
                if item is None:
                    return
                i, job = item
                with lock:
                    skip = job.group is not None and job.group in failed_groups
                if skip:
                    deliver(i, _skipped(job, slot.isolation))
                    continue
                try:
                    result = self._run_with_retry(slot, job)
                    self._modules.check(result, functools.partial(self._probe, slot))
                except BaseException as e:  # noqa: BLE001 - surfaced in the caller's thread
                    pending.cancel()
                    deliver(-1, e)
                    return
                if job.group is not None and not result.passed and (job.limits or self.limits).fail_fast:
                    with lock:
                        failed_groups.add(job.group)
                deliver(i, result)

        threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in self._slots]
        for t in threads:
            t.start()
        return threads

    def _run_with_retry(self, slot: Slot, job: Job) -> ExecResult:
        try:
            return slot.run(job, self.limits)
        except SandboxError:
            if slot.closed:
                raise
            return slot.run(job, self.limits)  # the zygote was restarted; one more try

    def _probe(self, slot: Slot, program: str, tests: Sequence[TestCase]) -> ExecResult:
        return self._run_with_retry(slot, Job(program, tests, return_outputs=True))

    def map(self, jobs: Iterable[Job], desc: str | None = None) -> list[ExecResult]:
        """Results in job order, with a progress bar when `desc` (or the pool's `progress`) is set.

        `jobs` may be a generator: jobs start as it yields them, costliest waiting job first, so a
        caller can go on preparing jobs (loading data) while the first ones run. If it raises,
        no further job starts, the running ones finish, and the error propagates (a
        KeyboardInterrupt at once: the running jobs end when the pool is closed).

        The slots' threads file each result themselves: the calling thread only waits for them to
        end, instead of waking (and taking the GIL) once per job as `imap`'s consumer does."""
        results: list[ExecResult | None] = []
        errors: list[BaseException] = []
        label = desc or self.progress
        sized = isinstance(jobs, Sized)
        bar = _progress(len(jobs) if sized else None, label)
        bar_lock = threading.Lock()

        def deliver(i: int, r) -> None:
            if i < 0:
                errors.append(r)
                return
            results[i] = r
            if bar is not None:
                with bar_lock:
                    bar.update(1)

        pending = _Pending()
        # A list is queued whole before any job starts, so that the costliest starts first; a
        # generator's jobs start as they come.
        threads = [] if sized else self._start(pending, deliver)
        try:
            try:
                for job in jobs:
                    if errors:  # a job raised: nothing more will start
                        break
                    results.append(None)  # before the job can start and deliver into it
                    pending.add(job)
            except BaseException as e:
                pending.cancel()
                if not isinstance(e, Exception):
                    threads = []  # Ctrl-C: do not wait for the running jobs (closing the pool ends them)
                raise
            finally:
                pending.close()
            if sized:
                threads = self._start(pending, deliver)
            elif bar is not None:  # the total is known now
                with bar_lock:
                    bar.total = len(results)
                    bar.refresh()
        finally:
            for t in threads:
                t.join()
            if bar is not None:
                bar.close()
        if errors:
            raise errors[0]
        if any(r is None for r in results):  # a slot's thread died outside a job (in deliver)
            raise SandboxError("a pool thread ended before its jobs did")
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for s in self._slots:
            s.close()
        self._slots = []

    def __enter__(self) -> "ExecPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Pending:
    """Jobs not yet started, costliest first (equal costs in the order added). Jobs may be added
    while the slots' threads take them; `take` waits for one until `close`."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Job]] = []
        self._cond = threading.Condition()
        self.added = 0
        self._closed = self._cancelled = False

    def add(self, job: Job) -> int:
        """Queue a job; returns its index (the order of `add` calls)."""
        with self._cond:
            i = self.added
            self.added += 1
            if not self._cancelled:
                heapq.heappush(self._heap, (-job.cost, i, job))
                self._cond.notify()
            return i

    def close(self) -> None:
        """No more jobs will come: `take` returns None once the heap is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Start nothing more: drop the jobs still waiting, and close."""
        with self._cond:
            self._heap.clear()
            self._closed = self._cancelled = True
            self._cond.notify_all()

    def take(self) -> tuple[int, Job] | None:
        with self._cond:
            while not self._heap and not self._closed:
                self._cond.wait()
            if not self._heap:
                return None
            _, i, job = heapq.heappop(self._heap)
            return i, job


def _skipped(job: Job, isolation: dict) -> ExecResult:
    why = "not run: another part of this test list failed first"
    return ExecResult([Verdict(t.name, Status.NOT_RUN, why) for t in job.tests], isolation=isolation)


def _progress(total: int, desc: str | None):
    if not desc:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="job", dynamic_ncols=True)


_default: dict[str, Any] = {}
_default_lock = threading.Lock()
_default_modules = ModuleCheck()


def execute(
    program: str,
    tests: Sequence[TestCase],
    limits: Limits = Limits(),
    *,
    return_outputs: bool = False,
    module: str = PROGRAM_MODULE,
    files: Mapping[str, str] | None = None,
    coverage: bool = False,
) -> ExecResult:
    """Run one program against its tests in a fresh sandboxed process (see `focalpo.sandbox`);
    `module`, `files` and `coverage` as in `Job`.

    Uses a lazily started single-slot pool that lives until the interpreter exits.
    """
    job = Job(program, tests, limits, return_outputs, module=module, files=files, coverage=coverage)
    with _default_lock:
        slot = _default.get(limits.network)
        if slot is None:
            slot = _default[limits.network] = Slot(0, limits.network, DEFAULT_PRELOAD)
            atexit.register(slot.close)

        def run(job: Job) -> ExecResult:
            try:
                return slot.run(job, limits)
            except SandboxError:
                return slot.run(job, limits)

        result = run(job)
        _default_modules.check(result, lambda program, tests: run(Job(program, tests, return_outputs=True)))
        return result
