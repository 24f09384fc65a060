"""Crash-safe writes: atomic whole files, and append-only JSONL logs.

Whole files: write a temporary file beside the target, fsync it, then `os.replace` it. A crash (or
kill -9) mid-write never leaves a half-written file under the target name, and the temporary file
is removed on error. Every artefact focalpo writes in one go (results, caches, pair files) goes
through here.

    with atomic_path("results.json") as tmp:     # write to `tmp`; it is renamed into place on success
        tmp.write_text("{}")
    atomic_write_bytes("cache.pkl", data)

Append-only logs (`AppendLog`): one `os.write` of a whole line per record on an O_APPEND file, so
records never interleave and a crash can only tear the last line, which the next open cuts off
(with a warning naming the file and line). Resumable pipelines and `focalpo.pairs.PairWriter` use it.

    with AppendLog("records.jsonl", fsync=True) as log:
        log.append({"task_id": "a", ...})
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    """The process umask, read from /proc (Linux) without touching it; elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in the target's folder; on a clean exit it is fsynced and renamed to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would have
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


class AppendLog:
    """Append JSON records (or ready-made lines) to a JSONL file, one write per record."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: Any) -> None:
        """Write `record` as one JSON line (non-ASCII kept as is)."""
        self.write_line(json.dumps(record, ensure_ascii=False) + "\n")

    def write_line(self, line: str) -> None:
        if not line.endswith("\n") or "\n" in line[:-1]:
            raise ValueError("an AppendLog line must be one line ending in a newline")
        os.write(self._fd, line.encode("utf-8"))  # one O_APPEND write per record: lines never interleave
        if self.fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "AppendLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cut_torn_tail(path: str | os.PathLike) -> None:
    """Cut a last line without its newline (a write torn by a crash) off `path`, with a warning."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:  # only the tail is read: logs can be large
        size = f.seek(0, os.SEEK_END)
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    lineno = data.count(b"\n", 0, keep) + 1
    warnings.warn(f"{path}:{lineno}: dropping a torn last record ({len(data) - keep} bytes without a newline)")
    with open(path, "r+b") as f:
        f.truncate(keep)
