"""OS-level isolation used by the zygote: namespaces, private /tmp, per-slot uids.

Everything here degrades gracefully: each feature is tried, and what could not be set up is
reported (`IsolationReport`) instead of failing. As root on Linux the zygote gets its own mount and
network namespace (only its own loopback is up: no network beyond localhost), a private /tmp,
/var/tmp and /dev/shm of bounded size (tmpfs, emptied after every job), and each job a fresh PID
namespace (the job is its PID 1: when it dies the kernel kills everything it started, `setsid`
daemons included) and an unprivileged uid of its own slot.

The environment stays the user's: every import location of the interpreter that runs the pool
(`import_locations`: its prefixes, sys.path, site directories, PYTHONPATH, editable installs) is
bound back, read-only, into whatever the zygote covers, a virtualenv under /tmp included.
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
    network_disabled: bool = False  # jobs reach no network (but their namespace's own loopback)
    loopback: bool = False  # jobs have a private localhost of their own network namespace
    private_tmp: bool = False  # /tmp, /var/tmp, /dev/shm are private to the slot, bounded, wiped after each job
    job_uid: int | None = None  # jobs run as this unprivileged uid (None: as the caller)
    processes_hidden: bool = False  # jobs see only their own processes in /proc
    subreaper: bool = False  # orphans of a job are re-parented to the zygote and killed
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def setup_zygote(slot: int, network: bool, scratch: int, keep: list[str] = ()) -> tuple[IsolationReport, int | None]:
    """Isolate the zygote process itself. Returns the report and an fd of its PID namespace
    (None when per-job PID namespaces are unavailable). `scratch`: bytes each private scratch dir
    may hold (`Limits.scratch`); `keep`: directories jobs must see besides this interpreter's own
    import locations (the pool's process passes its `import_locations`)."""
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
    if flags & CLONE_NEWNET:
        _loopback_up(rep)
    if flags & CLONE_NEWNS:
        _private_tmp(rep, scratch, [*keep, *import_locations()])
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


def _loopback_up(rep: IsolationReport) -> None:
    """Bring up the new network namespace's own loopback: programs may serve and connect on
    localhost among themselves (BigCodeBench has such tasks), while nothing outside the namespace,
    the host's loopback included, is reachable."""
    import fcntl
    import socket
    import struct

    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            ifreq = struct.pack("16sH22x", b"lo", 0)  # struct ifreq: name, then ifr_flags
            flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
        rep.loopback = True
    except OSError as e:
        rep.notes.append(f"no loopback in the sandbox's network namespace ({e}): localhost is unreachable")


SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # private per slot, writable, wiped after each job
MS_BIND = 0x1000
MS_REMOUNT = 0x20
MS_RDONLY = 0x1


def import_locations() -> list[str]:
    """Every directory this interpreter imports from: its prefixes (the interpreter, the standard
    library, a virtualenv or conda env), sys.path ("" is the working directory), the site
    directories, PYTHONPATH, and the package directories that editable installs map with an import
    hook instead of a sys.path entry (setuptools' `__editable__` finders). Real paths, sorted."""
    import site
    import sys

    cands = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    cands += [p or os.getcwd() for p in sys.path]
    cands += [*site.getsitepackages(), site.getusersitepackages()]
    cands += os.environ.get("PYTHONPATH", "").split(os.pathsep)
    cands += _editable_roots()
    return sorted({os.path.realpath(p) for p in cands if p and os.path.isdir(p)})


def _editable_roots() -> list[str]:
    """Directories of packages that a meta-path finder maps by name (setuptools' editable finder
    holds them in its module's `MAPPING`, name -> path, and `NAMESPACES`, name -> [paths])."""
    import sys

    roots: list[str] = []
    for finder in sys.meta_path:
        module = sys.modules.get(getattr(finder, "__module__", "") or "")
        for table in (getattr(module, "MAPPING", None), getattr(module, "NAMESPACES", None)):
            if not isinstance(table, dict):
                continue
            for value in table.values():
                for path in value if isinstance(value, list) else [value]:
                    if isinstance(path, str):
                        roots.append(path if os.path.isdir(path) else os.path.dirname(path))
    return roots


def outermost(paths: list[str]) -> list[str]:
    """The paths that are not inside another one of them (sorted)."""
    paths = sorted(set(paths))
    return [p for i, p in enumerate(paths) if not any(p.startswith(q.rstrip("/") + "/") for q in paths[:i])]


def in_scratch(path: str) -> bool:
    """Whether `path` (a real path) is, or is inside, one of the per-slot scratch dirs."""
    return any(path == d or path.startswith(d + "/") for d in SCRATCH_DIRS)


def jobs_see(path: str) -> bool:
    """Whether jobs of this zygote see `path` (a real path) as the host has it: outside the
    scratch dirs, or inside a location bound back into them."""
    return not in_scratch(path) or any(path == b or path.startswith(b + "/") for b in _BOUND)


def _masks_for(paths: list[str]) -> list[str]:
    """The outermost directories on the way to `paths` (the paths included) that an unprivileged
    job could not traverse (e.g. /root, mode 700, where pyenv lives)."""
    masks = set()
    for p in paths:
        parts = p.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            anc = "/" + "/".join(parts[:i])
            if not os.stat(anc).st_mode & 0o001:
                masks.add(anc)
                break
    return sorted(masks)


def _private_tmp(rep: IsolationReport, scratch: int, keep: list[str]) -> None:
    """In the zygote's own mount namespace: hide what jobs must not see, keep what they need.

    /tmp, /var/tmp and /dev/shm become private tmpfs of `scratch` bytes each (emptied after every
    job: files there are memory, so a job that fills them gets ENOSPC instead of taking the host's
    RAM); non-traversable ancestors of the kept directories (typically /root, where pyenv lives)
    are covered by an empty tmpfs. Every kept directory that a cover hides, in a scratch dir or
    under such an ancestor, is bound back read-only at its own path: jobs import from it but can
    neither write there nor see its neighbours. Each is opened before anything is covered and
    bound from its descriptor. The root-owned job root lives in /tmp.
    """
    try:
        mount("none", "/", None, MS_REC | MS_PRIVATE, None)
        for p in sorted(set(keep) & set(SCRATCH_DIRS)):  # the jobs' own scratch dir cannot also be the host's
            rep.notes.append(f"import location {p} is hidden from jobs (it is their private scratch dir)")
        keep = sorted({p for p in keep if p not in SCRATCH_DIRS and p != "/" and os.path.isdir(p)})
        masks = _masks_for([p for p in keep if not in_scratch(p)])
        # A location no other user may enter (the caller's home as its working directory) gives
        # jobs nothing: it is covered, and only the locations inside it are bound back.
        for p in sorted(set(keep) & set(masks)):
            rep.notes.append(f"import location {p} is not open to other users: jobs cannot read it")
        keep = outermost([p for p in keep if p not in masks])
        masks += [d for d in SCRATCH_DIRS if os.path.isdir(d)]
        covered = [p for p in keep if any(p.startswith(m + "/") for m in masks)]
        handles = [os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for p in covered]
        for m in masks:
            options = f"mode=1777,{_bounds(scratch)}" if m in SCRATCH_DIRS else "mode=0755"  # jobs cannot write
            mount("tmpfs", m, "tmpfs", MS_NOSUID | MS_NODEV, options)
        for p, fd in zip(covered, handles):
            _mount_point(p)
            mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC, None)
            os.close(fd)
            try:
                mount("none", p, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
            except OSError as e:
                rep.notes.append(f"{p} is visible to jobs but not read-only ({e})")
            _BOUND.append(p)
        for d in SCRATCH_DIRS:
            if os.path.isdir(d):
                _SCRATCH_DEVICES[d] = os.stat(d).st_dev
        _SCRATCH_SIZE[0] = scratch
        os.makedirs(JOBS_ROOT, mode=0o711, exist_ok=True)
        # What the per-job wipe must leave: the job root and the directories leading to the
        # bound-back locations (root's, mode 755 in a sticky dir: jobs cannot remove them).
        _SCRATCH_KEEP.update([JOBS_ROOT, *(_top_in_scratch(p) for p in _BOUND if in_scratch(p))])
        rep.private_tmp = True
        _hide_processes(rep)
        rep.notes += [f"masked {m}" for m in masks if m not in SCRATCH_DIRS]
    except OSError as e:
        rep.notes.append(f"private /tmp unavailable ({e}); jobs may write to world-writable dirs")


def _mount_point(path: str) -> None:
    """Create `path` and its missing parents on a fresh cover, root's and mode 755 whatever the umask."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for p in reversed(missing):
        os.mkdir(p)
        os.chmod(p, 0o755)


def _top_in_scratch(path: str) -> str:
    """The entry of a scratch dir that holds `path`: "/tmp/x/.venv" -> "/tmp/x"."""
    d = next(d for d in SCRATCH_DIRS if path.startswith(d + "/"))
    return d + "/" + path[len(d) + 1 :].split("/")[0]


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
_SCRATCH_KEEP: set[str] = set()  # entries of the scratch dirs that the per-job wipe leaves
_BOUND: list[str] = []  # directories bound back (read-only) into what this zygote covered
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
            if path in _SCRATCH_KEEP:
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
