"""Per-job process confinement, done in each forked job before untrusted code runs.

`focalpo.sandbox.isolation` isolates the zygote once (namespaces, private /tmp, per-slot uids);
this module confines each job the zygote forks: its own session, the result and output pipes on
fds 3, 1 and 2 (every other inherited fd closed), rlimits, the OOM killer's first pick, the slot's
unprivileged uid, death with the zygote, and a fixed environment. Runs as root where available;
it imports nothing the zygote has not imported already (see `test_zygote_does_not_import_threading`).
"""

from __future__ import annotations

import os
import resource
import signal


def confine(spec: dict, result_fd: int, out_fd: int, err_fd: int) -> None:
    """Everything that must happen before untrusted code runs. Runs as root where available."""
    os.setsid()  # own session and process group: kill(0, ...) reaches only the job
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.dup2(result_fd, 3)
    os.closerange(4, 1 << 16)  # the zygote's control socket and every other inherited fd
    limits = spec["limits"]
    os.chdir(spec["workdir"])
    for res, value in (
        (resource.RLIMIT_AS, limits["memory"]),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, limits["file_size"]),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
        (resource.RLIMIT_NPROC, limits["processes"]),
    ):
        if value is not None:
            resource.setrlimit(res, (value, value))
    prefer_oom_kill()
    uid = spec.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    set_parent_death_signal()
    if "env" in spec:  # otherwise the zygote already holds the job environment (_job.prepare_zygote)
        enter_environment(spec["env"])


def prefer_oom_kill() -> None:
    """Make this job, and every process it starts (they inherit it), the kernel OOM killer's first
    victims: memory is bounded per process (RLIMIT_AS), so a job of many processes can still
    exhaust the host, and then it must die, not the evaluator or the user's other work. Raising
    one's own score needs no privilege; where /proc is missing this is skipped."""
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, b"1000")
    except OSError:
        pass
    finally:
        os.close(fd)


def enter_environment(env: dict[str, str]) -> None:
    """The job's environment, and its temporary directory, replace the zygote's."""
    import tempfile

    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = env["TMPDIR"]


try:  # resolved once in the zygote, not per job
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def set_parent_death_signal() -> None:
    # After setuid (a credential change clears it): die with the zygote.
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
