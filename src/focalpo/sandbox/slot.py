"""One pool slot: a zygote process and the jobs it runs, one at a time, against per-test deadlines.

A `Slot` owns one zygote (`focalpo.sandbox.zygote`). To run a job it creates three pipes (results,
stdout, stderr), sends the zygote the job (tests stripped of their expected outputs:
`judge.job_side`) with the pipes' write ends, gets back a pidfd of the forked job, and watches the
pipes against a per-test deadline; the result frames go to the process's `Attempt`
(`focalpo.sandbox.attempt`), which judges them in trusted code. If the job overruns a deadline it
is killed through the pidfd (its whole PID namespace goes with it) and, when tests remain, a fresh
job continues from the next test; the same happens after a crash, so every test gets its own
verdict. A dead zygote is restarted and the job's run fails with `SandboxError` (the pool retries).
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import selectors
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from focalpo.sandbox._channel import recv_msg, send_msg, send_raw
from focalpo.sandbox.attempt import Attempt, RunState, Tail, budget_of, out_of_budget
from focalpo.sandbox.feedback import CoverageLines
from focalpo.sandbox.isolation import import_locations
from focalpo.sandbox.jobfiles import PROGRAM_MODULE, check_job_layout
from focalpo.sandbox.judge import job_side
from focalpo.sandbox.types import ExecResult, Job, Limits, SandboxError
from focalpo.sandbox.wire import FrameReader

# Imported by a zygote just before the first job whose program mentions them. A bigger zygote
# makes every fork dearer (numpy: ~0.4 ms of CPU a job, ~8 % of a short HumanEval job), so
# benchmarks whose programs never use numpy do not pay for it; once one does, it is warm.
ON_DEMAND_PRELOAD = ("numpy",)

_SRC = str(Path(__file__).resolve().parents[2])  # the directory holding the focalpo package


def _zygote_env() -> dict[str, str]:
    # Absolute: the zygote starts in another directory (see Slot._spawn_zygote).
    paths = [_SRC] + [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        # Preloaded numpy would otherwise start an OpenBLAS thread pool in the zygote, whose
        # threads spin on a core and do not survive the fork anyway (jobs get the same setting).
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class Slot:
    """One zygote process and the jobs it runs, one at a time."""

    def __init__(
        self, index: int, network: bool, preload: Sequence[str], wait: bool = True,
        on_demand: Sequence[str] = ON_DEMAND_PRELOAD, scratch: int = Limits.scratch,
    ):  # fmt: skip
        self.index = index
        self.config = json.dumps({
            "network": network, "preload": list(preload), "scratch": scratch,
            # Jobs see what this process imports from, wherever it lives (a venv under /tmp too).
            "paths": import_locations(), "sys_path": [p for p in sys.path if os.path.isabs(p)],
        })  # fmt: skip
        self.preload = frozenset(preload)
        self.on_demand = [m for m in on_demand if m not in self.preload]
        self.ready = False
        self.closed = False  # by `close`: no restart, no retry
        self._isolation: dict = {}
        self._hello_lock = threading.Lock()  # `isolation` may be read while another thread runs a job
        self._spawn_zygote()
        if wait:
            self.wait_ready()

    def _spawn_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cmd = [sys.executable, "-m", "focalpo.sandbox.zygote", str(theirs.fileno()), str(self.index), self.config]
        self.proc = subprocess.Popen(
            cmd, pass_fds=[theirs.fileno()], env=_zygote_env(), stdin=subprocess.DEVNULL, close_fds=True,
            # `-m` puts the working directory first on sys.path: the caller's could hold a `types.py`
            # or `random.py` that the zygote would import instead of the standard library's. Jobs
            # still get the caller's own sys.path entries after the interpreter's (`config`).
            cwd=_SRC,
        )
        theirs.close()
        self.sock = ours
        self.ready = False
        self.imported: set[str] = set()  # modules this zygote was asked to import (on demand or Job.imports)

    def wait_ready(self) -> None:
        """Wait for the zygote's hello (it isolates itself and imports the preload first)."""
        if self.ready:
            return
        with self._hello_lock:
            if self.ready:
                return
            try:
                (kind, info), _ = recv_msg(self.sock)
            except EOFError:
                raise SandboxError(f"sandbox zygote failed to start (exit code {self.proc.wait()})") from None
            self._isolation, self.ready = info, True

    @property
    def isolation(self) -> dict:
        self.wait_ready()
        return self._isolation

    def close(self) -> None:
        """End the zygote, and with it a job it may be running, for good."""
        self.closed = True
        self._stop()

    def _stop(self) -> None:
        if not self.ready and self.proc.poll() is None:
            self.proc.kill()  # still starting up: it holds no job, and would only fail to say hello
        try:
            # The zygote sees the channel end at once, even while it waits for a job: it then
            # kills the job and exits, rather than let the job run on to its time limit.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        finally:
            self.sock.close()

    def _restart(self, why: str) -> None:
        if self.closed:
            raise SandboxError("the pool was closed while a job ran")
        try:
            self._stop()
        except Exception:  # noqa: BLE001
            pass
        self._spawn_zygote()
        self.wait_ready()

    # ----------------------------------------------------------------------------------------------

    def run(self, job: Job, default_limits: Limits) -> ExecResult:
        self.wait_ready()
        limits = job.limits or default_limits
        tests = list(job.tests)
        run = RunState(
            job, limits, tests, [job_side(t) for t in tests], [None] * len(tests),
            [None] * len(tests) if job.return_outputs else None, Tail(limits.output), Tail(limits.output),
            ExecResult(verdicts=[], isolation=self.isolation), CoverageLines(job.program) if job.coverage else None,
        )  # fmt: skip
        t0 = time.perf_counter()
        start: int | None = 0
        while start is not None:
            budget = budget_of(job, start)
            if budget is not None and budget.left <= 0:
                start = out_of_budget(job, start, run.verdicts)  # other chunks of this list spent it
            else:
                start, run.batch = self._attempt(run, start)
            if start is not None and start >= len(tests):
                start = None
        return run.finish(t0)

    def _attempt(self, run: RunState, start: int) -> tuple[int | None, bool]:
        """Run tests[start:] in one job process.

        Returns (where a follow-up job must start or None, whether it may batch its reports)."""
        job, tests, side, limits = run.job, run.tests, run.side, run.limits
        spec = {
            "program": job.program,
            "tests": [(i, side[i], limits.time_for(tests[i])) for i in range(start, len(tests))],
            "limits": _limits_dict(limits),
            "load_time": limits.load_time,
            "needs_namespace": any(s[0] != "stdio" for s in side) or not side,
            "batch": run.batch,
        }
        if job.module != PROGRAM_MODULE or job.files or job.coverage:  # keys the job looks for, only when set
            _add_layout(spec, job)
        wanted = [m for m in self.on_demand if m not in self.imported and m in job.program]
        wanted += [m for m in dict.fromkeys(job.imports) if m not in self.imported and m not in self.preload and m not in wanted]
        self.imported.update(wanted)  # the zygote imports these before it forks this job
        # The zygote reads only the small header; the job decodes its own spec (see zygote._serve).
        header = (spec["limits"]["scratch"], wanted)
        body = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
        pipes = [os.pipe() for _ in range(3)]
        try:
            send_msg(self.sock, header, [w for _, w in pipes])
            send_raw(self.sock, body)
            (kind, _pid), fds = recv_msg(self.sock)
        except (OSError, EOFError) as e:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            self._restart(f"zygote lost while starting a job: {e}")
            raise SandboxError(f"sandbox zygote died ({e}); it was restarted, retry the job") from None
        for _, w in pipes:
            os.close(w)
        pidfd = fds[0]
        att = Attempt(run, start, pidfd)
        try:
            status = self._watch(att, [r for r, _ in pipes])
        finally:
            os.close(pidfd)
            for r, _ in pipes:
                try:
                    os.close(r)
                except OSError:
                    pass
        return att.conclude(status)

    def _watch(self, att: Attempt, readers: list[int]) -> int | None:
        """Read the job's pipes until it has ended and they are closed, killing it at its deadline
        (or when its time budget runs out); returns its wait status (-1: the zygote died)."""
        r_res, r_out, r_err = readers
        out, err, tests, limits = att.run.out, att.run.err, att.run.tests, att.run.limits
        sel = selectors.DefaultSelector()
        for fd in readers:
            sel.register(fd, selectors.EVENT_READ)
        sel.register(self.sock, selectors.EVENT_READ)
        frames = FrameReader()
        att.deadline = time.monotonic() + limits.load_time + limits.grace
        open_fds, status = set(readers), None
        try:
            while open_fds or status is None:
                if self.closed:  # its zygote kills the job: the pipes' ends woke us
                    raise SandboxError("the pool was closed while a job ran")
                # The time since the last wake-up went to the test that was running: charge it
                # before this wake-up's reports move on to the next one.
                budget_end = time.monotonic() + att.charge()
                if not att.killed and budget_end <= time.monotonic():
                    att.kill("budget")
                timeout = None if att.killed else max(0.0, min(att.deadline, budget_end) - time.monotonic())
                events = sel.select(timeout)
                if not events and not att.killed and time.monotonic() >= min(att.deadline, budget_end):
                    att.kill("timeout" if att.deadline <= budget_end else "budget")
                    continue
                for key, _ in events:
                    fd = key.fd
                    if fd == self.sock.fileno():
                        try:
                            (kind, status), _ = recv_msg(self.sock)
                        except (EOFError, OSError):
                            att.kill("zygote")
                            self._restart("zygote died during a job")
                            status = -1
                        sel.unregister(fd)
                        continue
                    target = frames.target() if fd == r_res else None
                    if target is not None:  # a big raw frame: read straight into its buffer
                        with target:
                            got = os.readv(fd, [target])
                        data = b"" if not got else None
                    else:
                        data = os.read(fd, 1 << 20)
                    if data is not None and not data:
                        sel.unregister(fd)
                        open_fds.discard(fd)
                        continue
                    if fd == r_out:
                        out.add(data)
                    elif fd == r_err:
                        err.add(data)
                    else:
                        if att.transfer is not None:  # bytes keep coming: the transfer is alive
                            att.deadline = min(att.transfer[0], time.monotonic() + att.transfer[1])
                        try:
                            raw_frames = frames.feed(data) if data is not None else frames.filled(got)
                            while True:
                                att.handle(raw_frames)
                                if att.killed or not frames.blocked:
                                    break
                                # A raw frame is next: only as the announced test's report.
                                if att.extended != att.current or att.current >= len(tests):
                                    att.kill("protocol")
                                    break
                                frames.allow_raw()
                                raw_frames = frames.feed(b"")
                        except ValueError:
                            att.kill("protocol")
        finally:
            att.charge()
            sel.close()
        return status


@functools.lru_cache(maxsize=64)
def _limits_dict(limits: Limits) -> dict:
    """`asdict(limits)` for job specs, once per Limits value (it was ~0.1 ms of each job)."""
    return asdict(limits)


def _add_layout(spec: dict, job: Job) -> None:
    """The optional spec keys of a job with a module name, extra files or coverage."""
    files = check_job_layout(job.module, job.files)  # again: a Job's fields may be reassigned
    if job.module != PROGRAM_MODULE:
        spec["module"] = job.module
    if files:
        spec["files"] = files
    if job.coverage:
        spec["coverage"] = True
