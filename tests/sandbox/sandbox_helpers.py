"""Helpers shared by the sandbox tests: small limits, one-job runs and a leftover-process detector.

Imported by `tests/sandbox/test_*.py` (pytest puts this directory on sys.path). The detector reads
/proc directly; it is what makes "0 surviving processes" a checked property rather than a hope:

    left = leftover_processes(job_uids(pool), marker="focalpo-hostile-1a2b")   # [] after a clean job

Other sessions may run sandbox pools on the same machine with the same per-slot uids (245760 +
slot), so a process counts as ours when it descends from one of *this* test process's zygotes, or
when it has a job uid (or the marker in its command line) and does not descend from someone
else's zygote.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from focalpo.sandbox import ExecPool, ExecResult, Job, Limits

# Small limits keep the suite fast: a hard-killed test costs (test_time + grace), twice when the
# parent re-runs unreported tests to pin a timeout on the right one.
FAST = Limits(test_time=1.0, grace=0.3, load_time=1.0, memory=1 << 30)
HANG = 0.5  # per-test time_limit of tests that are meant to hang

ZYGOTE = "focalpo.sandbox.zygote"


def run_one(pool: ExecPool, program: str, tests, **job_kw) -> ExecResult:
    """Run one job on `pool` and return its result."""
    return pool.map([Job(program, tests, **job_kw)])[0]


def statuses(result: ExecResult) -> list[str]:
    return [v.status for v in result.verdicts]


# --------------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    uid: int  # real uid
    state: str  # R, S, Z ...
    cmdline: str

    def __str__(self) -> str:
        return f"pid={self.pid} ppid={self.ppid} uid={self.uid} state={self.state} cmd={self.cmdline[:120]!r}"


def list_processes() -> dict[int, Proc]:
    """Every process visible in /proc (zombies included), keyed by pid."""
    procs: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                status = fh.read()
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:  # exited while we looked
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        procs[int(name)] = Proc(
            pid=int(name),
            ppid=int(fields["PPid"]),
            uid=int(fields["Uid"].split()[0]),
            state=fields["State"].strip()[:1],
            cmdline=cmdline.replace(b"\0", b" ").decode(errors="replace").strip(),
        )
    return procs


def _ancestors(procs: dict[int, Proc], pid: int) -> list[int]:
    chain, seen = [], {pid}
    while pid in procs and procs[pid].ppid not in seen and procs[pid].ppid > 0:
        pid = procs[pid].ppid
        seen.add(pid)
        chain.append(pid)
    return chain


def _classify(uids: set[int], marker: str | None) -> tuple[list[Proc], list[Proc]]:
    """(surely ours, probably ours): descendants of this process's zygotes or marked processes,
    and processes with a job uid whose ancestry shows no other test run's zygote."""
    procs = list_processes()
    me = os.getpid()
    zygotes = {
        p.pid for p in procs.values() if ZYGOTE in p.cmdline and not (p.ppid in procs and ZYGOTE in procs[p.ppid].cmdline)
    }
    ours = {pid for pid in zygotes if procs[pid].ppid == me}
    foreign = zygotes - ours
    sure, probable = [], []
    for p in procs.values():
        if p.pid == me or p.pid in zygotes:
            continue
        up = set(_ancestors(procs, p.pid))
        if up & ours or (marker is not None and marker in p.cmdline):
            sure.append(p)
        elif p.uid in uids and not up & foreign:
            probable.append(p)
    return sure, probable


def leftover_processes(uids: set[int], marker: str | None = None) -> list[Proc]:
    """Processes of sandbox jobs that exist right now (see the module docstring for 'ours').

    A process known only by its uid is counted if it is still there a moment later: another test
    run's job that ends while /proc is read can briefly look parentless."""
    sure, probable = _classify(uids, marker)
    if probable:
        time.sleep(0.2)
        again = {p.pid for p in _classify(uids, marker)[1]}
        probable = [p for p in probable if p.pid in again]
    return sure + probable


def job_uids(pool: ExecPool) -> set[int]:
    """The uids jobs of `pool` run as (one per slot: base + zygote PID), or {} without a uid switch."""
    uids = {slot.isolation.get("job_uid") for slot in pool._slots}
    return set() if None in uids else uids


def assert_no_leftovers(pool: ExecPool, marker: str | None = None) -> None:
    left = leftover_processes(job_uids(pool), marker)
    assert not left, "processes survived the job:\n" + "\n".join(map(str, left))


# --------------------------------------------------------------------------------------------------
# Environment facts


