"""Reading benchmark rows with where they come from, and typed field access with clear errors.

`iter_rows(source)` reads JSONL (plain or gzip) line by line, or any other source of
`focalpo.datasets_io` (parquet, a `save_to_disk` directory, a Hub id, with a split and a column
mapping). Every error a loader raises for a bad row is a `ProblemFormatError` (a `ValueError`)
whose message reads `path:line: field 'x': what is wrong` (a dataset's row: `path[i]: ...`), so a
user can open the file at the right place.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from focalpo.datasets_io import Source, as_source, iter_source_rows, source_kind
from focalpo.io import RowError, atomic_write_bytes, cache_root, iter_json_lines

_MISSING = object()


class ProblemFormatError(RowError):
    """A bad row in a benchmark file: names the file, the line and (when known) the field."""


def iter_jsonl(path: str | os.PathLike) -> Iterator[Row]:
    """Yield one `Row` per non-blank line of a JSONL file (gzip detected by its magic bytes)."""
    for lineno, obj in iter_json_lines(path, error=ProblemFormatError):
        yield Row(Path(path), lineno, obj)


def iter_rows(source: str | os.PathLike | Source) -> Iterator[Row]:
    """`iter_jsonl` for a JSONL file without a column mapping, else one `Row` per row of the dataset
    source (`focalpo.datasets_io`), named `path[i]`."""
    src = as_source(source)
    if source_kind(src) == "jsonl" and not src.columns:
        yield from iter_jsonl(src.ref)
        return
    try:
        for where, obj in iter_source_rows(src):
            yield Row(Path(src.ref), None, obj, where=where)
    except ProblemFormatError:
        raise
    except ValueError as e:  # a row that is not an object, a mapped column the dataset lacks
        raise ProblemFormatError(src.ref, None, None, str(e).removeprefix(f"{src.ref}: "), where=str(src)) from None


def dataset_hash(path: str | os.PathLike | Source) -> str:
    """sha256 (hex) of the file's bytes, as stored (a .gz file is hashed compressed); remembered
    per (path, size, mtime), since a run asks for it once per cache file it opens. A `save_to_disk`
    directory hashes its files' hashes; a split or a column mapping is part of the hash. A Hub id
    has no bytes to hash: save it to disk (`Dataset.save_to_disk`) where a cache needs one."""
    src = as_source(path)
    kind = source_kind(src)
    if kind == "hub":
        raise ValueError(f"{src.ref}: results computed from a Hub dataset are cached by the data's hash; "
                         "save it with save_to_disk (or to parquet) and pass that path")
    if kind == "disk":
        files = sorted(p for p in Path(src.ref).expanduser().rglob("*") if p.is_file())
        digest = hashlib.sha256("".join(f"{p.name}:{dataset_hash(p)}\n" for p in files).encode()).hexdigest()
    else:
        st = os.stat(src.ref)
        digest = _hash(os.path.realpath(src.ref), st.st_size, st.st_mtime_ns)
    if src.split is None and not src.columns:
        return digest
    return hashlib.sha256(f"{digest}:{src.split}:{sorted(src.columns)}".encode()).hexdigest()


@functools.lru_cache(maxsize=32)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


ROWS_VERSION = "rows1"  # bump when what `rows_without` stores changes


def rows_without(path: str | os.PathLike, drop: tuple[str, ...]) -> Iterator[Row]:
    """`iter_jsonl(path)` with the fields `drop` removed, served from a cache after the first run.

    A base-only HumanEval+ run needs none of `plus_input`, yet parsing it is most of the file's
    load time. The first call parses the whole file as `iter_jsonl` does (so its errors are the
    same) and stores the remaining fields with their line numbers in
    `<cache root>/rows/<sha256 of the file>-<fields>-<version>.json`; later calls read that
    (plain JSON) instead. Rows keep the original path and line for error messages. A cache that
    cannot be read is rebuilt; one that cannot be written is skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    cache = cache_root() / "rows" / f"{dataset_hash(p)}-{'+'.join(sorted(drop))}-{ROWS_VERSION}.json"
    try:
        stored = json.loads(cache.read_bytes())
        if isinstance(stored, list) and all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], int) and isinstance(r[1], dict) for r in stored):
            return iter([Row(p, line, data) for line, data in stored])
    except (OSError, ValueError):
        pass
    rows = [Row(r.path, r.line, {k: v for k, v in r.data.items() if k not in drop}) for r in iter_jsonl(p)]
    try:
        atomic_write_bytes(cache, json.dumps([[r.line, r.data] for r in rows]).encode())
    except (OSError, TypeError, ValueError):
        pass  # a read-only home, say: the next run parses the file again
    return iter(rows)


class Row:
    """One JSON object of a file, with typed accessors that raise `ProblemFormatError`; `where` names a
    row without a line (a dataset's row, "path[i]")."""

    def __init__(self, path: Path, line: int | None, data: dict, where: str | None = None):
        self.path, self.line, self.data, self.where = path, line, data, where

    def error(self, field: str | None, message: str) -> ProblemFormatError:
        return ProblemFormatError(self.path, self.line, field, message, where=self.where)

    def get(self, field: str, types: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        """The field's value, checked against `types`; `default` makes it optional (null = absent)."""
        value = self.data.get(field)
        if value is None:
            if default is _MISSING:
                raise self.error(field, "missing" if field not in self.data else "is null")
            return default
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            raise self.error(field, f"expected {_type_names(types)}, got {type(value).__name__}")
        return value

    def text(self, field: str, default: Any = _MISSING) -> Any:
        return self.get(field, str, default)

    def parse_test(self, test_src: str):
        """The `test` field's source parsed with `ast`; a SyntaxError names this row."""
        import ast
        import warnings

        try:
            with warnings.catch_warnings():  # invalid escapes in test strings warn, harmlessly
                warnings.simplefilter("ignore")
                return ast.parse(test_src)
        except SyntaxError as e:
            raise self.error("test", f"does not parse: {e.msg} (line {e.lineno} of the test)") from None

    def number(self, field: str, default: Any = _MISSING) -> float:
        return float(self.get(field, (int, float), default))


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _type_names(types: type | tuple[type, ...]) -> str:
    names = {dict: "object", list: "array", str: "string", int: "integer", float: "number"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(types))
