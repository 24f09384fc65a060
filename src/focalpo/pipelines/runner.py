"""What the data pipelines share beyond `focalpo.runs`: free config keys, pair format, `focalpo merge`.

    merge_runs(["runs/s0", "runs/s1", ...], "runs/all")            # `focalpo merge`

The run machinery itself (run directories, shards, per-problem seeds) is `focalpo.runs`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from focalpo.io import write_json, write_jsonl
from focalpo.runs import CONFIG_FILE, RECORDS_FILE, merge_records, missing_shards

PAIRS_JSONL, PAIRS_PARQUET = "pairs.jsonl", "pairs.parquet"

# options of a data pipeline that may change between a run and its --resume (or between its
# shards): they change no record
FREE_KEYS = ("workers", "progress", "batch_problems", "limit", "base_url", "out", "parquet")


def write_pair_files(out: str | os.PathLike, pairs: Sequence[dict], config: dict) -> str:
    """`pairs.jsonl`, and `pairs.parquet` when the run asked for it (`parquet`), from the records' pair
    dicts; returns the file a dataset card points to."""
    from focalpo.pairs import PreferencePair, write_pairs

    out = Path(out)
    write_jsonl(out / PAIRS_JSONL, pairs)
    if not config.get("parquet"):
        (out / PAIRS_PARQUET).unlink(missing_ok=True)  # a stale one from an earlier run would disagree
        return PAIRS_JSONL
    write_pairs(out / PAIRS_PARQUET, [PreferencePair.from_json(p, where=f"{out}/{PAIRS_JSONL}[{i}]")
                                      for i, p in enumerate(pairs)], overwrite=True)
    return PAIRS_PARQUET


def chat_pairs(backend: Any, pair_format: str) -> bool:
    """Whether pair records are conversational: "chat" / "plain" force it; "auto" follows the backend
    (a chat template in use, or the chat API)."""
    if pair_format != "auto":
        return pair_format == "chat"
    return bool(getattr(backend, "use_chat_template", False) or getattr(backend, "api", None) == "chat")


def merge_runs(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False) -> dict:
    """`focalpo merge`: the shard runs' records in one run directory `out`, derived files rewritten.

    Returns {"records": n, "missing_shards": [...], "summary": ...}. Missing shards are reported,
    not an error: a partial merge is useful while shards still run.
    """
    import importlib

    from focalpo.pipelines import PIPELINES

    first = Path(run_dirs[0]) / CONFIG_FILE if run_dirs else None
    pipeline = json.loads(first.read_text()).get("pipeline") if first and first.is_file() else None
    if first and first.is_file() and pipeline not in PIPELINES:
        raise ValueError(f"merge: {first}: field 'pipeline': unknown pipeline {pipeline!r}")
    module = importlib.import_module(PIPELINES[pipeline]) if pipeline else None
    config, records = merge_records(run_dirs, free_keys=("shard", *getattr(module, "FREE_KEYS", ())))
    shards = [json.loads((Path(d) / CONFIG_FILE).read_text()).get("shard") or "0/1" for d in run_dirs]
    out = Path(out)
    if any(out.resolve() == Path(d).resolve() for d in run_dirs):
        raise ValueError(f"merge: the output {out} is one of the inputs")
    if ((out / CONFIG_FILE).exists() or (out / RECORDS_FILE).exists()) and not overwrite:
        raise FileExistsError(f"{out} already holds a run; pass --overwrite to replace it")
    merged = {**config, "shard": "", "merged_from": [str(d) for d in run_dirs]}
    write_jsonl(out / RECORDS_FILE, records)
    write_json(out / CONFIG_FILE, merged)
    summary = module.write_outputs(out, records, merged)
    return {"records": len(records), "missing_shards": missing_shards(shards), "summary": summary}


@dataclass
class MergeConfig:
    """Options of `focalpo merge`."""

    runs: list[str] = field(default_factory=list)  # shard run directories (the --out of each --shard i/N)
    out: str = ""  # merged run directory
    overwrite: bool = False  # replace a run already in `out`
