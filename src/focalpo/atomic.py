"""Atomic file writes: write a temporary file beside the target, fsync it, then `os.replace` it.

A crash (or kill -9) mid-write never leaves a half-written file under the target name, and the
temporary file is removed on error. Every artefact focalpo writes in one go (results, caches,
pair files) goes through here; append-only logs (`focalpo.pairs.PairWriter`) have their own writer.

    with atomic_path("results.json") as tmp:     # write to `tmp`; it is renamed into place on success
        tmp.write_text("{}")
    atomic_write_bytes("cache.pkl", data)
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in the target's folder; on a clean exit it is fsynced and renamed to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
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
