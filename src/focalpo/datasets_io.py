"""Rows from any data source focalpo reads, and parquet out: the Hugging Face data ecosystem's formats.

    for where, row in iter_source_rows("pairs.parquet"):            # where: "pairs.parquet[3]"
        ...
    source = Source("org/dpo-data", split="train", columns=(("prompt", "question"),))
    for where, row in iter_source_rows(source):                      # where: "org/dpo-data:train[3]"
        ...
    write_parquet("pairs.parquet", rows)                            # atomic; loads with datasets / TRL

A source (`source_kind`) is
- a JSONL file (`.jsonl`, `.jsonl.gz`, any other file name): read line by line by `focalpo.io`, so
  a bad line is named `file:line`;
- a `.json` / `.json.gz` file holding a list (`file[i]`);
- a `.parquet` file: `datasets.load_dataset("parquet", data_files=..., split="train")`;
- a directory written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`: `datasets.load_from_disk`
  (a DatasetDict needs `split` unless it holds a single split);
- anything else that looks like a Hub id ("name" or "org/name") and is not a local path:
  `datasets.load_dataset(id, split=split or "train")` (needs the network, or the Hub cache).
Rows of a dataset are named by their 0-based index: `file[i]`, `dir:split[i]`, `org/name:split[i]`.
Arrow timestamps come back as ISO strings, so a row is plain JSON values.

Column mapping: `columns` maps focalpo's field names to the source's column names
(`--columns prompt=question,chosen=accepted`): each row's `question` is read as its `prompt`. A
mapped column that a dataset does not have is an error naming the source and its columns.

`datasets` (and pyarrow) are imported only when a parquet, Arrow or Hub source is read or written.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from focalpo.io import atomic_path, iter_json_rows

KINDS = ("jsonl", "json", "parquet", "disk", "hub")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_FILE_SUFFIXES = (".jsonl", ".json", ".gz", ".parquet", ".arrow", ".csv", ".txt")


@dataclass(frozen=True)
class Source:
    """A data source with its dataset split and column mapping ((focalpo name, source column), ...)."""

    ref: str
    split: str | None = None
    columns: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.ref if self.split is None else f"{self.ref}:{self.split}"


def data_source(ref: str | os.PathLike | None, split: str | None = None,
                columns: Mapping[str, str] | None = None) -> str | Source | None:
    """`ref` as it is when there is no split and no mapping (a plain path keeps its old behaviour),
    else a `Source`; None stays None (the benchmark's default file)."""
    if ref is None or (split is None and not columns):
        return None if ref is None else str(ref)
    return Source(str(ref), split, tuple((columns or {}).items()))


def as_source(source: str | os.PathLike | Source) -> Source:
    return source if isinstance(source, Source) else Source(str(source))


def parse_columns(text: str) -> dict[str, str]:
    """"prompt=question,chosen=accepted" -> {"prompt": "question", "chosen": "accepted"}."""
    out: dict[str, str] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        name, eq, column = (s.strip() for s in item.partition("="))
        if not eq or not name or not column:
            raise ValueError(f"--columns {text!r}: expected FIELD=COLUMN[,FIELD=COLUMN...], got {item!r}")
        out[name] = column
    return out


def source_kind(source: str | os.PathLike | Source) -> str:
    """One of `KINDS` (module doc); FileNotFoundError for a local path that is not there."""
    ref = as_source(source).ref
    path = Path(ref).expanduser()
    if path.is_dir():
        return "disk"
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".parquet"):
            return "parquet"
        return "json" if name.endswith((".json", ".json.gz")) else "jsonl"
    looks_local = ref.startswith(("/", ".", "~")) or ref.count("/") > 1 or ref.lower().endswith(_FILE_SUFFIXES)
    if looks_local or not _HUB_ID.match(ref):
        raise FileNotFoundError(f"{ref}: no such file or directory (nor a Hub dataset id such as org/name)")
    return "hub"


def iter_source_rows(source: str | os.PathLike | Source, *, objects: bool = True) -> Iterator[tuple[str, Any]]:
    """(where, row) for each row of `source` (module doc), columns renamed by its mapping.

    `objects`: a row that is not a JSON object is an error naming it (JSONL and JSON lists; dataset
    rows are always objects)."""
    src = as_source(source)
    kind = source_kind(src)
    columns = dict(src.columns)
    if kind in ("jsonl", "json"):
        for where, row in iter_json_rows(src.ref):
            if not isinstance(row, dict):
                if objects:
                    raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
                yield where, row
                continue
            yield where, rename_columns(row, columns)
        return
    dataset, label = _load_dataset(src, kind)
    missing = [(name, col) for name, col in columns.items() if col not in dataset.column_names]
    if missing:
        name, col = missing[0]
        raise ValueError(f"{label}: column {col!r} (mapped to {name!r}) not found; its columns: "
                         f"{', '.join(dataset.column_names)}")
    for i, row in enumerate(dataset):
        yield f"{label}[{i}]", rename_columns({k: _plain(v) for k, v in row.items()}, columns)


def rename_columns(row: dict, columns: Mapping[str, str]) -> dict:
    """`row` with each mapped source column under its focalpo name (a row without it is left as is)."""
    if not columns:
        return row
    row = dict(row)
    for name, column in columns.items():
        if column in row:
            row[name] = row.pop(column)
    return row


def _plain(value: Any) -> Any:
    """Arrow values as JSON values: timestamps and dates become ISO strings."""
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _load_dataset(src: Source, kind: str):
    """(datasets.Dataset, label naming it in errors)."""
    import datasets

    if kind == "parquet":
        if src.split not in (None, "train"):
            raise ValueError(f"{src.ref}: a parquet file has one split ('train'), not {src.split!r}")
        return datasets.load_dataset("parquet", data_files=str(Path(src.ref).expanduser()), split="train"), src.ref
    if kind == "disk":
        path = Path(src.ref).expanduser()
        try:
            loaded = datasets.load_from_disk(str(path))
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{src.ref}: not a directory written by save_to_disk ({e})") from None
        if isinstance(loaded, datasets.DatasetDict):
            splits = list(loaded)
            split = src.split or (splits[0] if len(splits) == 1 else None)
            if split not in loaded:
                raise ValueError(f"{src.ref}: give --split, one of {', '.join(splits)}"
                                 + (f" (not {src.split!r})" if src.split else ""))
            return loaded[split], f"{src.ref}:{split}"
        if src.split is not None:
            raise ValueError(f"{src.ref}: a saved Dataset has no splits; leave out --split {src.split}")
        return loaded, src.ref
    split = src.split or "train"
    return datasets.load_dataset(src.ref, split=split), f"{src.ref}:{split}"


def write_parquet(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write rows (one schema) as a parquet file atomically, through `datasets`; returns the count.

    Every key of any row is a column, null in the rows without it (`Dataset.from_list` alone would
    take the first row's keys and silently drop the others)."""
    from datasets import Dataset

    rows = list(rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    rows = [{key: row.get(key) for key in columns} for row in rows]
    try:
        dataset = Dataset.from_list(rows)
    except (TypeError, ValueError) as e:  # pyarrow's ArrowInvalid / ArrowTypeError subclass these
        raise ValueError(f"{path}: the rows do not share one column schema, so they cannot be parquet: {e}") from None
    with atomic_path(path) as tmp:
        dataset.to_parquet(str(tmp))
    return len(rows)


def saved_dataset_splits(path: str | os.PathLike) -> tuple[str, ...] | None:
    """For a directory written by `save_to_disk`: () for a Dataset, the split names of a DatasetDict;
    None for anything else (a plain directory, such as an evalplus samples directory)."""
    path = Path(path).expanduser()
    if (path / "state.json").is_file() and (path / "dataset_info.json").is_file():
        return ()
    marker = path / "dataset_dict.json"
    if marker.is_file():
        try:
            return tuple(json.loads(marker.read_text(encoding="utf-8"))["splits"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{marker}: not a DatasetDict's split list (written by save_to_disk)") from None
    return None


def is_parquet(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".parquet")


def json_column(value: Any) -> str:
    """A free JSON object (pair `meta`) as one parquet string column: its keys vary from row to row."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
