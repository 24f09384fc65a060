"""Preference pair records: one tokenizer-free JSONL line per (prompt, chosen, rejected) with its regions.

    >>> p = PreferencePair("def f():\\n", "    return 1\\n", "    return 2\\n",
    ...                    chosen_spans=((4, 13),), rejected_spans=((4, 13),))
    >>> PreferencePair.from_json(p.to_json()) == p
    True

A record is TRL-compatible (`prompt`, `chosen`, `rejected`: strings, or TRL's conversational form, a
list of {role, content} messages for the prompt and a list holding one assistant message for each
completion) plus the localisation, as character offsets into the completion *text* (the assistant
content in the conversational form):

- `chosen_spans`, `rejected_spans`: sorted, disjoint [start, end) spans; for LCS localisation these
  are Target-DPO's D+ and D- (arXiv 2503.02783, Algorithm 1).
- `prefix_len`, `chosen_suffix_start`, `rejected_suffix_start`: Focused-DPO's common prefix
  `chosen[:prefix_len] == rejected[:prefix_len]` and common suffix `chosen[chosen_suffix_start:] ==
  rejected[rejected_suffix_start:]` (arXiv 2502.11475); what lies between is the error-prone middle.
- `meta`: free JSON object (localiser, source line, ranks, ...).

Localisation fields are optional (None = not localised); the schemes in `focalpo.weights` that need
them say so. I/O: `read_pairs(source)` (JSONL, optionally .gz, a .json list, parquet, a `save_to_disk`
directory or a Hub id: `focalpo.datasets_io`), `write_pairs(path, pairs)` (JSONL, or parquet when
`path` ends in `.parquet`; atomic: temp file then rename; refuses to replace a file unless
`overwrite=True`), `PairWriter` (append one record per line and flush, for resumable pipelines).
Every error a user can hit names file:line (a dataset's row: `file[i]`) and field:
"pairs.jsonl:7: field 'rejected_spans': span [9, 4) has start > end".

Parquet (`pair_columns`): TRL's `prompt`, `chosen`, `rejected` columns, so that `DPOTrainer` takes
the file as it is, then every localisation field as a column of its own (null when absent) and
`meta` as a JSON string (its keys vary from pair to pair, a column schema cannot). Reading a
dataset source, a string `meta` is decoded, and columns that are not pair fields (a TRL dataset's
scores, ids) go into `meta` instead of being refused as they are in a JSONL pairs file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from focalpo.datasets_io import Source, is_parquet, iter_source_rows, json_column, source_kind, write_parquet
from focalpo.io import AppendLog, atomic_path

Messages = list  # list[dict[str, str]]: TRL's conversational form
Text = Union[str, Messages]
Spans = tuple[tuple[int, int], ...]

REQUIRED = ("prompt", "chosen", "rejected")
LOCALISATION = ("chosen_spans", "rejected_spans", "prefix_len", "chosen_suffix_start", "rejected_suffix_start")
FIELDS = REQUIRED + LOCALISATION + ("meta",)


def completion_text(completion: Text) -> str:
    """The text that spans index: the string itself, or the content of the single assistant message."""
    return completion if isinstance(completion, str) else completion[0]["content"]


@dataclass(frozen=True)
class PreferencePair:
    """One preference pair and its regions (character offsets into the completion texts)."""

    prompt: Text
    chosen: Text
    rejected: Text
    chosen_spans: Spans | None = None
    rejected_spans: Spans | None = None
    prefix_len: int | None = None
    chosen_suffix_start: int | None = None
    rejected_suffix_start: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Spans arrive as JSON lists; keep them hashable and comparable as tuples.
        for name in ("chosen_spans", "rejected_spans"):
            spans = getattr(self, name)
            if spans is not None:
                object.__setattr__(self, name, tuple((int(s), int(e)) for s, e in spans))

    @property
    def chosen_text(self) -> str:
        return completion_text(self.chosen)

    @property
    def rejected_text(self) -> str:
        return completion_text(self.rejected)

    @property
    def is_conversational(self) -> bool:
        return not isinstance(self.prompt, str)

    def as_conversational(self) -> PreferencePair:
        """TRL's conversational form of a plain pair (one user turn, one assistant turn each); spans,
        which index the completion text, are unchanged. A conversational pair is returned as is."""
        if self.is_conversational:
            return self
        return dataclasses.replace(
            self, prompt=[{"role": "user", "content": self.prompt}],
            chosen=[{"role": "assistant", "content": self.chosen}],
            rejected=[{"role": "assistant", "content": self.rejected}],
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; localisation fields that are None are left out."""
        out: dict[str, Any] = {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}
        for name in LOCALISATION:
            value = getattr(self, name)
            if value is not None:
                out[name] = [list(s) for s in value] if name.endswith("_spans") else value
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_json(cls, record: Any, *, where: str = "<pair>") -> PreferencePair:
        """Validate `record` (a decoded JSON object) and build the pair; errors start with `where`."""
        check_record(record, where)
        return cls(**{k: record[k] for k in FIELDS if k in record})


# --------------------------------------------------------------------------------------------------
# validation


def _fail(where: str, name: str, message: str) -> None:
    raise ValueError(f"{where}: field {name!r}: {message}")


def _check_messages(value: Any, where: str, name: str) -> None:
    if not value or not all(isinstance(m, dict) for m in value):
        _fail(where, name, "a conversational value must be a non-empty list of {role, content} objects")
    for i, m in enumerate(value):
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            _fail(where, name, f"message {i} needs string 'role' and 'content'")


def _check_text(record: dict, where: str, name: str) -> None:
    if name not in record:
        _fail(where, name, "missing")
    value = record[name]
    conversational = not isinstance(record["prompt"], str)
    if isinstance(value, str) and not conversational:
        return
    if isinstance(value, str):
        _fail(where, name, "is a string but 'prompt' is a list of messages; use one form for all three")
    if not isinstance(value, list):
        _fail(where, name, f"must be a string or a list of messages, got {type(value).__name__}")
    if not conversational:
        _fail(where, name, "is a list of messages but 'prompt' is a string; use one form for all three")
    _check_messages(value, where, name)
    if name != "prompt" and (len(value) != 1 or value[0]["role"] != "assistant"):
        _fail(where, name, "a conversational completion must be a list of exactly one assistant message")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_spans(value: Any, length: int, where: str, name: str) -> None:
    if not isinstance(value, (list, tuple)):
        _fail(where, name, f"must be a list of [start, end] pairs, got {type(value).__name__}")
    prev_end = 0
    for span in value:
        if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(_is_int(x) for x in span)):
            _fail(where, name, f"{span!r} is not an [start, end] pair of integers")
        start, end = span
        if start > end:
            _fail(where, name, f"span [{start}, {end}) has start > end")
        if start < 0 or end > length:
            _fail(where, name, f"span [{start}, {end}) is out of range for a completion of {length} characters")
        if start < prev_end:
            _fail(where, name, f"span [{start}, {end}) overlaps or precedes the previous span (ending at {prev_end})")
        prev_end = end


def _check_boundaries(record: dict, chosen: str, rejected: str, where: str) -> None:
    names = ("prefix_len", "chosen_suffix_start", "rejected_suffix_start")
    present = [n for n in names if record.get(n) is not None]
    if not present:
        return
    for n in names:
        if record.get(n) is None:
            _fail(where, n, f"missing while {present[0]!r} is set; the three boundaries go together")
        if not _is_int(record[n]):
            _fail(where, n, f"must be an integer, got {type(record[n]).__name__}")
    p, cs, rs = (record[n] for n in names)
    if not 0 <= p <= min(cs, rs):
        _fail(where, "prefix_len", f"{p} must lie in [0, min(chosen_suffix_start, rejected_suffix_start)]")
    if cs > len(chosen) or rs > len(rejected):
        bad = "chosen_suffix_start" if cs > len(chosen) else "rejected_suffix_start"
        _fail(where, bad, f"{record[bad]} is beyond the end of the completion")
    if chosen[:p] != rejected[:p]:
        _fail(where, "prefix_len", f"chosen and rejected differ within their first {p} characters")
    if chosen[cs:] != rejected[rs:]:
        _fail(where, "chosen_suffix_start", "chosen[chosen_suffix_start:] != rejected[rejected_suffix_start:]")


def check_record(record: Any, where: str) -> None:
    """Raise ValueError "<where>: field 'x': ..." unless `record` is a valid pair record."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        _fail(where, unknown[0], f"unknown field (known: {', '.join(FIELDS)}); put extra data in 'meta'")
    if "prompt" not in record:
        _fail(where, "prompt", "missing")
    for name in REQUIRED:
        _check_text(record, where, name)
    chosen, rejected = completion_text(record["chosen"]), completion_text(record["rejected"])
    for name, text in (("chosen_spans", chosen), ("rejected_spans", rejected)):
        if record.get(name) is not None:
            _check_spans(record[name], len(text), where, name)
    _check_boundaries(record, chosen, rejected, where)
    if not isinstance(record.get("meta", {}), dict):
        _fail(where, "meta", f"must be an object, got {type(record['meta']).__name__}")


# --------------------------------------------------------------------------------------------------
# I/O


def read_pairs(source: str | os.PathLike | Source) -> list[PreferencePair]:
    """All pair records of a source (module doc), validated; errors name file:line (or row) and field."""
    dataset = source_kind(source) not in ("jsonl", "json")
    return [PreferencePair.from_json(dataset_record(row, where) if dataset else row, where=where)
            for where, row in iter_source_rows(source, objects=False)]


def dataset_record(row: dict, where: str) -> dict:
    """A dataset row as a pair record: `meta` decoded from its JSON string, other columns into `meta`."""
    record = {k: v for k, v in row.items() if k in FIELDS}
    meta = record.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: field 'meta': not a JSON string: {e.msg}") from None
    if meta is None:
        meta = {}
    extra = {k: v for k, v in row.items() if k not in FIELDS}
    record["meta"] = {**meta, **extra} if isinstance(meta, dict) and extra else meta
    return record


def pair_columns(pair: PreferencePair) -> dict[str, Any]:
    """One parquet row: prompt, chosen, rejected, each localisation field (None when absent), meta as JSON."""
    row: dict[str, Any] = {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
    for name in LOCALISATION:
        value = getattr(pair, name)
        row[name] = [list(s) for s in value] if value is not None and name.endswith("_spans") else value
    row["meta"] = json_column(pair.meta)
    return row


def _line(pair: PreferencePair) -> str:
    return json.dumps(pair.to_json(), ensure_ascii=False) + "\n"


def write_pairs(path: str | os.PathLike, pairs: Iterable[PreferencePair], *, overwrite: bool = False) -> int:
    """Write `pairs` as JSONL, or parquet when `path` ends in `.parquet` (module doc), atomically (temp
    file in the same folder, then rename); returns the count.

    Refuses an existing `path` unless `overwrite`; a crash leaves the old file (or none) in place.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    if is_parquet(path):
        return write_parquet(path, (pair_columns(p) for p in pairs))
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(_line(pair))
            n += 1
    return n


class PairWriter:
    """Append pair records to a JSONL file, one `write` call per record (resumable pipelines).

        with PairWriter("pairs.jsonl") as w:
            w.write(pair)

    Existing records are kept. A torn last line (a crash mid-record: the file does not end in a
    newline) is cut off on open, with a warning naming the file and line, so the next record starts
    on a fresh line (`focalpo.io.AppendLog`).
    """

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False):
        self._log = AppendLog(path, fsync=fsync)
        self.path = self._log.path

    def write(self, pair: PreferencePair) -> None:
        self._log.write_line(_line(pair))

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> PairWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
