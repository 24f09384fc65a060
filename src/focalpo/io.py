"""Files, one home: crash-safe writes, JSON/JSONL reading with file:line errors, the cache root.

Whole files: write a temporary file beside the target, fsync it, then `os.replace` it. A crash (or
kill -9) mid-write never leaves a half-written file under the target name, and the temporary file
is removed on error. Every artefact focalpo writes in one go (results, caches, pair files) goes
through here.

    with atomic_path("results.json") as tmp:     # write to `tmp`; it is renamed into place on success
        tmp.write_text("{}")
    atomic_write_bytes("cache.pkl", data)
    write_json("summary.json", {...}); write_jsonl("rows.jsonl", rows)

Append-only logs (`AppendLog`): one `os.write` of a whole line per record on an O_APPEND file, so
records never interleave and a crash can only tear the last line, which the next open cuts off
(with a warning naming the file and line). Resumable pipelines and `focalpo.pairs.PairWriter` use it.

    with AppendLog("records.jsonl", fsync=True) as log:
        log.append({"task_id": "a", ...})

Reading: `iter_json_lines(path)` yields (line number, row) of a JSONL file, gzip detected by its
name or magic bytes; `iter_json_rows(path)` yields ("file:line", row) and also reads a `.json`
list. A bad line raises `RowError` (a `ValueError`) reading `file:line: field 'x': what is wrong`.

`check_model_path(ref)`: a clear error for a local model directory that is not there.
`progress_bar(...)`: a tqdm bar over problems, or None. `cache_root()`: `$FOCALPO_CACHE`, else `~/.cache/focalpo`, where focalpo keeps what it can recompute.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator


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


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, default=None) -> None:
    """Write `obj` as JSON atomically (non-ASCII kept as is, a trailing newline)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, ensure_ascii=False, default=default) + "\n", encoding="utf-8")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    """Write rows as JSONL atomically; returns the count."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


# --------------------------------------------------------------------------------------------------
# reading

GZIP_MAGIC = b"\x1f\x8b"


class RowError(ValueError):
    """A bad row in a data file: names the file, the line and (when known) the field."""

    def __init__(self, path: str | os.PathLike, line: int | None, field: str | None, message: str, *,
                 where: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        # `where` names a row that has no line (a dataset's row: "file[i]")
        where = where or (self.path if line is None else f"{self.path}:{line}")
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{message}")


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """`path` opened for reading bytes, decompressed when it is named `.gz` or starts with gzip's magic
    bytes (a `.gz` file that is not gzip fails on its first read, naming line 1)."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def iter_json_lines(path: str | os.PathLike, *, objects: bool = True, error: type[RowError] = RowError,
                    ) -> Iterator[tuple[int, Any]]:
    """(line number, decoded row) for each non-blank line of a JSONL file, plain or gzip.

    Lines are decoded one by one, so that bad UTF-8, bad JSON, a non-object row (with `objects`) and a
    corrupt gzip stream each raise `error` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    lineno = 0
    with open_binary(path) as f:
        while True:
            try:
                raw = f.readline()
            except (OSError, EOFError) as e:  # gzip: corrupt or truncated
                raise error(path, lineno + 1, None, f"cannot read: {e}") from None
            if not raw:
                return
            lineno += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise error(path, lineno, None, f"not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise error(path, lineno, None, f"invalid JSON: {e.msg} (column {e.colno})") from None
            if objects and not isinstance(row, dict):
                raise error(path, lineno, None, f"expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def iter_json_rows(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """(where, decoded row) for each row of a JSONL file (.gz too) or a .json file holding a list.

    `where` is "file:line" for JSONL and "file[i]" for a JSON list; blank JSONL lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.name.endswith((".json", ".json.gz")):
        yield from _iter_json_list(path)
        return
    for lineno, row in iter_json_lines(path, objects=False):
        yield f"{path}:{lineno}", row


def _iter_json_list(path: Path) -> Iterator[tuple[str, Any]]:
    with open_binary(path) as f:
        try:
            rows = json.loads(f.read().decode("utf-8"))
        except json.JSONDecodeError as e:
            raise RowError(path, e.lineno, None, f"invalid JSON: {e.msg} (column {e.colno})") from None
        except UnicodeDecodeError as e:
            raise RowError(path, None, None, f"not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not isinstance(rows, list):
        raise RowError(path, None, None, f"a .json file must hold a list of rows, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        yield f"{path}[{i}]", row


# --------------------------------------------------------------------------------------------------
# the console


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    """A tqdm bar over problems (rate and ETA), or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="problem", dynamic_ncols=True)


# --------------------------------------------------------------------------------------------------
# models and other directories named on the command line


def check_model_path(ref: str, what: str = "model") -> None:
    """Raise FileNotFoundError when `ref` is meant as a local path (it starts with "/", ".", "~" or has
    more than one "/"; a hub id is "name" or "org/name") and nothing is there; transformers would
    otherwise read it as a malformed hub id ("Repo id must be in the form ...")."""
    text = str(ref)
    local = text.startswith(("/", ".", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text
    if local and not Path(text).expanduser().exists():
        raise FileNotFoundError(f"{what} {text}: no such directory")


# --------------------------------------------------------------------------------------------------
# cache

CACHE_ENV = "FOCALPO_CACHE"


def cache_root() -> Path:
    """`$FOCALPO_CACHE`, else `~/.cache/focalpo`: where focalpo keeps what it can recompute."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "focalpo"
