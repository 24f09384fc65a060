"""Resumable, shardable runs: one append-only JSONL record per problem, shards, per-problem seeds.

    shard = Shard.parse("1/4")                        # this process takes a quarter of the problems
    with RunDir("runs/focused", config, resume=True) as run:
        for problem in problems:
            if shard.owns(problem.task_id) and problem.task_id not in run.done:
                run.append({"task_id": problem.task_id, ...})      # one line, fsynced
    config, records = merge_records(["runs/s0", "runs/s1", ...])   # `focalpo merge` builds on it

The data pipelines (`focalpo focused`, `focalpo codeflow`) and sampling (`focalpo sample`) use this
machinery. A run directory holds
- `config.json`: the resolved run config, written before any record. `--resume` refuses a
  config that differs from it in anything but the keys the caller declares free (workers,
  progress, ...): mixing records made under two configs would silently corrupt the data;
- `records.jsonl`: one record per finished problem (the unit of work), appended with a single
  O_APPEND write and an fsync (`focalpo.io.AppendLog`). After a kill -9 a torn last line is cut
  off and a restart skips every problem already recorded: no record is lost or duplicated;
- derived files (pairs, summary) that the pipeline rewrites atomically from the records at the end
  of a run, so they are never stale or half-written.

Sharding is by a hash of the task id (`Shard.owns`), not by position: shards agree whatever the
order of the problem file, and each problem's seed (`problem_seed`) depends only on the run seed
and its task id, so a problem samples the same way in any shard, batch or restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from focalpo.io import AppendLog, cut_torn_tail, write_json

CONFIG_FILE = "config.json"
RECORDS_FILE = "records.jsonl"
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def stable_hash(text: str) -> int:
    """A 64-bit hash of `text` that is the same in every process (unlike `hash`)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def problem_seed(seed: int, task_id: str, stream: str = "") -> int:
    """The seed of one problem (and one sampling `stream`, e.g. "programs"/"tests"): 31 bits."""
    return stable_hash(f"{seed}\x00{task_id}\x00{stream}") % (1 << 31)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based): owns the task ids whose stable hash is `index` mod `count`."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need count >= 1 and 0 <= index < count")

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """"i/N" (e.g. "0/4"); None or "" is the whole run."""
        if not text:
            return cls()
        m = _SHARD.match(text)
        if not m:
            raise ValueError(f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. 0/4")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, task_id: str) -> bool:
        return self.count == 1 or stable_hash(task_id) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def check_unique_ids(task_ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for t in task_ids:
        if t in seen:
            raise ValueError(f"problem task_id {t!r} appears twice: records are keyed by task id")
        seen.add(t)



# --------------------------------------------------------------------------------------------------
# records


def read_records(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """(file:line, record) for each record of a run's records file; a bad line is a ValueError naming it."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            if not line.endswith("\n"):  # a torn tail: AppendLog cuts it when the run resumes
                raise ValueError(f"{where}: torn last record (no newline); resume the run to cut it off")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(record, dict) or not isinstance(record.get("task_id"), str):
                raise ValueError(f"{where}: field 'task_id': every record needs a string task_id")
            yield where, record


def _empty(value) -> bool:
    return value is None or value is False or (isinstance(value, (str, dict, list)) and not value)


def config_diff(old: dict, new: dict, free: Iterable[str]) -> list[str]:
    """"key: old -> new" for every key (but the `free` ones) whose value differs between two configs.

    A key only one config has, holding an empty value there (None, False, "", {}, []), is no difference:
    an option added by a later focalpo, at its default, changes no record of a run started before it."""
    free = set(free)
    keys = sorted((set(old) | set(new)) - free)
    added = {k for k in (set(old) ^ set(new)) if _empty(old.get(k, new.get(k)))}
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k) and k not in added]


class RunDir:
    """A pipeline's output directory: config check, resumable records, derived files (module doc).

    resume: continue a run in a non-empty directory (its config must match). overwrite: discard
    the directory's records and derived files and start afresh. Neither: a non-empty directory is
    refused. `derived` names the files the pipeline writes from the records (removed on overwrite).
    """

    def __init__(self, path: str | os.PathLike, config: dict, *, resume: bool = False, overwrite: bool = False,
                 free_keys: Sequence[str] = (), derived: Sequence[str] = ()) -> None:
        if resume and overwrite:
            raise ValueError("pass either --resume or --overwrite, not both")
        self.path = Path(path)
        self.config = json.loads(json.dumps(config))  # plain JSON values, compared as they will be stored
        self.records_path = self.path / RECORDS_FILE
        config_path = self.path / CONFIG_FILE
        started = config_path.exists() or self.records_path.exists()
        if started and overwrite:
            for name in (RECORDS_FILE, CONFIG_FILE, *derived):
                p = self.path / name
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        elif started and not resume:
            raise FileExistsError(f"{self.path} already holds a run; pass --resume to continue it "
                                  "or --overwrite to start afresh")
        elif started:
            old = json.loads(config_path.read_text()) if config_path.exists() else {}
            diff = config_diff(old, self.config, free_keys)
            if diff:
                raise ValueError(f"{config_path}: --resume with a different config ({'; '.join(diff)}); "
                                 "use the same options, or a new output directory")
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(config_path, self.config)
        cut_torn_tail(self.records_path)
        self.done: dict[str, str] = {}
        if self.records_path.exists():
            for where, record in read_records(self.records_path):
                if record["task_id"] in self.done:
                    raise ValueError(f"{where}: field 'task_id': {record['task_id']!r} "
                                     f"already recorded at {self.done[record['task_id']]}")
                self.done[record["task_id"]] = where
        self._log = AppendLog(self.records_path, fsync=True)

    def append(self, record: dict) -> None:
        """Record one finished problem (refuses a task id that is already recorded)."""
        task_id = record["task_id"]
        if task_id in self.done:
            raise ValueError(f"{self.records_path}: {task_id!r} is already recorded at {self.done[task_id]}")
        self._log.append(record)
        self.done[task_id] = f"{self.records_path}:(appended)"

    def records(self) -> list[dict]:
        return [r for _, r in read_records(self.records_path)]

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# merge


def merge_records(run_dirs: Sequence[str | os.PathLike], *, free_keys: Sequence[str] = ("shard",)) -> tuple[dict, list[dict]]:
    """(config, records) of several shard runs of one config, concatenated in argument order.

    Configs must agree except for `free_keys`; a task id recorded twice is an error naming both
    places (two shards of different counts, or the same shard given twice).
    """
    if not run_dirs:
        raise ValueError("merge: give at least one run directory")
    config: dict | None = None
    first_dir = None
    records: list[dict] = []
    seen: dict[str, str] = {}
    for d in map(Path, run_dirs):
        config_path = d / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{d}: not a run directory (no {CONFIG_FILE})")
        this = json.loads(config_path.read_text())
        if config is None:
            config, first_dir = this, d
        else:
            diff = config_diff(config, this, free_keys)
            if diff:
                raise ValueError(f"merge: {d} was run with a different config than {first_dir}: {'; '.join(diff)}")
        if not (d / RECORDS_FILE).exists():
            continue  # a shard that owned no problem, or has not started
        for where, record in read_records(d / RECORDS_FILE):
            if record["task_id"] in seen:
                raise ValueError(f"{where}: field 'task_id': {record['task_id']!r} also in {seen[record['task_id']]}")
            seen[record["task_id"]] = where
            records.append(record)
    assert config is not None
    return config, records


def missing_shards(configs_shards: Iterable[str | None]) -> list[str]:
    """Shards "i/N" not among `configs_shards` when all name the same N (empty when complete)."""
    shards = [Shard.parse(s) for s in configs_shards]
    counts = {s.count for s in shards}
    if len(counts) != 1:
        return []
    count = counts.pop()
    have = {s.index for s in shards}
    return [f"{i}/{count}" for i in range(count) if i not in have]
