"""OS-level isolation used by the zygote: namespaces, private /tmp, per-slot uids.

Everything here degrades gracefully: each feature is tried, and what could not be set up is
reported (`IsolationReport`) instead of failing. As root on Linux the zygote gets its own mount and
network namespace (no interfaces, so no network), a private /tmp, /var/tmp and /dev/shm of bounded
size (tmpfs, emptied after every job), and each job a fresh PID namespace (the job is its PID 1:
when it dies the kernel kills everything it started, `setsid` daemons included) and an
unprivileged uid of its own slot.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import asdict, dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_NOSUID = 0x2
MS_NODEV = 0x4

JOB_UID_BASE = 0x3C000  # 245760: far from distribution-managed uid ranges (+ the zygote's PID)
MS_NOEXEC = 0x8
JOBS_ROOT = "/tmp/focalpo-jobs"

_libc = None


def _c():
    global _libc
    if _libc is None:
        # The interpreter's own symbol table holds libc (no `ctypes.util.find_library`: it imports
        # subprocess and threading into the zygote, and may run ldconfig)
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_c().unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_c().setns(fd, nstype), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


@dataclass
class IsolationReport:
    """What the sandbox could and could not isolate on this machine (shown in ExecResult.isolation)."""

    pid_namespace: bool = False  # each job in its own PID namespace: nothing survives it
    network_disabled: bool = False  # jobs see no network interface
    private_tmp: bool = False  # /tmp, /var/tmp, /dev/shm are private to the slot, bounded, wiped after each job
    job_uid: int | None = None  # jobs run as this unprivileged uid (None: as the caller)
    processes_hidden: bool = False  # jobs see only their own processes in /proc
    subreaper: bool = False  # orphans of a job are re-parented to the zygote and killed
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def setup_zygote(slot: int, network: bool, scratch: int) -> tuple[IsolationReport, int | None]:
    """Isolate the zygote process itself. Returns the report and an fd of its PID namespace
    (None when per-job PID namespaces are unavailable). `scratch`: bytes each private scratch dir
    may hold (`Limits.scratch`)."""
    rep = IsolationReport()
    root = os.geteuid() == 0
    _set_subreaper(rep)
    if not root:
        rep.notes.append("not root: no namespaces, jobs run as the calling user, network is NOT disabled")
        return rep, None
    flags = CLONE_NEWNS | (0 if network else CLONE_NEWNET)
    try:
        unshare(flags)
        rep.network_disabled = not network
    except OSError as e:
        rep.notes.append(f"mount/network namespace unavailable ({e}); network is NOT disabled")
        flags = 0
    if flags & CLONE_NEWNS:
        _private_tmp(rep, scratch)
    # One uid per live zygote (its PID is unique while it lives): jobs of different pools, in this
    # or any other process, never share a uid, so never an RLIMIT_NPROC budget or a kill target.
    rep.job_uid = JOB_UID_BASE + os.getpid()
    pid_ns_fd = None
    try:
        pid_ns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
        unshare(CLONE_NEWPID)  # probe: allowed here?
        setns(pid_ns_fd, CLONE_NEWPID)
        rep.pid_namespace = True
    except OSError as e:
        rep.notes.append(f"PID namespaces unavailable ({e}); a subreaper cleans up instead")
        if pid_ns_fd is not None:
            os.close(pid_ns_fd)
        pid_ns_fd = None
    return rep, pid_ns_fd


SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # private per slot, writable, wiped after each job
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REMOUNT = 0x20


def needed_paths() -> list[str]:
    """Directories a job must be able to read: the interpreter, its libraries, sys.path."""
    import sys

    # Never "" or "." (the caller's working directory): that could be /tmp itself.
    cands = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix] + [p for p in sys.path if os.path.isabs(p)]
    paths = sorted({os.path.realpath(p) for p in cands if os.path.isdir(p)})
    # Nothing inside a scratch dir is bound back: those become private and are wiped per job.
    paths = [p for p in paths if not in_scratch(p) and p != "/"]
    # keep only outermost directories
    return [p for i, p in enumerate(paths) if not any(p.startswith(q.rstrip("/") + "/") for q in paths[:i])]


def in_scratch(path: str) -> bool:
    """Whether `path` (a real path) is, or is inside, one of the per-slot scratch dirs."""
    return any(path == d or path.startswith(d + "/") for d in SCRATCH_DIRS)


def _masks_for(paths: list[str]) -> list[str]:
    """Ancestors that an unprivileged job could not traverse (e.g. /root, mode 700)."""
    masks = set()
    for p in paths:
        parts = p.strip("/").split("/")
        for i in range(1, len(parts)):
            anc = "/" + "/".join(parts[:i])
            if not os.stat(anc).st_mode & 0o001:
                masks.add(anc)
                break
    return sorted(masks)


def _private_tmp(rep: IsolationReport, scratch: int) -> None:
    """In the zygote's own mount namespace: hide what jobs must not see, keep what they need.

    Non-traversable ancestors of the interpreter's directories (typically /root) are covered by
    an empty tmpfs into which only those directories are bound back; /tmp, /var/tmp and /dev/shm
    become private tmpfs of `scratch` bytes each (emptied after every job: files there are memory,
    so a job that fills them gets ENOSPC instead of taking the host's RAM); the root-owned job
    root lives in /tmp.
    """
    try:
        mount("none", "/", None, MS_REC | MS_PRIVATE, None)
        keep = needed_paths()
        masks = _masks_for(keep) + [d for d in SCRATCH_DIRS if os.path.isdir(d)]
        covered = [p for p in keep if any(p == m or p.startswith(m + "/") for m in masks)]
        stage = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
        mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700")
        staged = []
        for i, p in enumerate(covered):
            os.mkdir(f"{stage}/{i}")
            mount(p, f"{stage}/{i}", None, MS_BIND | MS_REC, None)
            staged.append((f"{stage}/{i}", p))
        for m in masks:
            if m != stage:
                options = f"mode=1777,{_bounds(scratch)}" if m in SCRATCH_DIRS else "mode=0755"  # jobs cannot write
                mount("tmpfs", m, "tmpfs", MS_NOSUID | MS_NODEV, options)
        for src, dst in staged:
            os.makedirs(dst, mode=0o755, exist_ok=True)
            mount(src, dst, None, MS_MOVE, None)
        mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,{_bounds(scratch)}")  # last: it held the stage
        for d in SCRATCH_DIRS:
            if os.path.isdir(d):
                _SCRATCH_DEVICES[d] = os.stat(d).st_dev
        _SCRATCH_SIZE[0] = scratch
        os.makedirs(JOBS_ROOT, mode=0o711, exist_ok=True)
        rep.private_tmp = True
        _hide_processes(rep)
        rep.notes += [f"masked {m}" for m in masks if m not in SCRATCH_DIRS]
    except OSError as e:
        rep.notes.append(f"private /tmp unavailable ({e}); jobs may write to world-writable dirs")


def _hide_processes(rep: IsolationReport) -> None:
    """A /proc of our own with `hidepid=2`: a job (an unprivileged uid of its own) sees only its
    own processes, not the host's or their command lines. Once per zygote, so it costs jobs nothing
    (a per-job mount namespace with a fresh /proc cost ~1 ms a job)."""
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
        rep.processes_hidden = True
    except OSError as e:
        rep.notes.append(f"could not mount /proc with hidepid=2 ({e}); jobs can list host processes")


_SCRATCH_DEVICES: dict[str, int] = {}  # scratch dir -> st_dev of the tmpfs this zygote mounted there
_SCRATCH_SIZE = [0]  # bytes each of them may hold now
INODE_BYTES = 16 * 1024  # a scratch dir holds one file or directory per this many bytes of Limits.scratch


def _bounds(size: int) -> str:
    """tmpfs options for a scratch dir of `size` bytes. Inodes are bounded too: an empty file
    takes no `size` but ~1 KB of kernel memory, and a job creates ~100,000 a second."""
    return f"size={size},nr_inodes={max(1024, size // INODE_BYTES)}"


def size_scratch(size: int) -> None:
    """Give each private scratch dir room for `size` bytes (a job whose `Limits.scratch` differs
    from the last one's). Between jobs they are empty, so shrinking cannot fail on their content."""
    if size == _SCRATCH_SIZE[0]:
        return
    for d, dev in _SCRATCH_DEVICES.items():
        if os.stat(d).st_dev == dev:
            mount("tmpfs", d, None, MS_REMOUNT | MS_NOSUID | MS_NODEV, _bounds(size))
    _SCRATCH_SIZE[0] = size


def wipe_scratch() -> None:
    """Empty the private scratch dirs after a job.

    Only a directory that is still the very tmpfs `_private_tmp` mounted (same device) is touched,
    so this can never reach the host's /tmp.
    """
    import shutil

    for d, dev in _SCRATCH_DEVICES.items():
        try:
            if os.stat(d).st_dev != dev:
                continue
            entries = os.listdir(d)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(d, name)
            if path == JOBS_ROOT:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _set_subreaper(rep: IsolationReport) -> None:
    try:
        _check(_c().prctl(36, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
        rep.subreaper = True
    except OSError as e:
        rep.notes.append(f"no subreaper ({e})")


def fork_job(pid_ns_fd: int | None) -> int:
    """fork(), the child in a new PID namespace when `pid_ns_fd` is given (it is then PID 1)."""
    if pid_ns_fd is None:
        return os.fork()
    unshare(CLONE_NEWPID)  # affects children only
    try:
        return os.fork()
    finally:
        if os.getpid() != 1:  # parent: back to our own namespace for the next unshare
            setns(pid_ns_fd, CLONE_NEWPID)


def kill_leftovers() -> int:
    """Kill and reap every remaining child of this (subreaper) process; returns how many."""
    import signal

    killed = 0
    for _ in range(100):
        kids = _children()
        if not kids:
            break
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed


def _children() -> list[int]:
    pids: list[int] = []
    task_dir = f"/proc/{os.getpid()}/task"
    try:
        for tid in os.listdir(task_dir):
            with open(f"{task_dir}/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return pids
