"""The run directory of `focalpo train` / `focalpo sft`: checks, the checkpoint to resume from, crash safety.

    resume_from = prepare_output(cfg, clear=False)   # refuses a busy directory unless --overwrite/--resume
    out = start_output(cfg, state, CONFIG_NAME)      # after the data was read: clear, write the config

A kill at any moment resumes: `last_complete_checkpoint` skips a `checkpoint-N` whose save was cut short
(no or a torn `trainer_state.json`, no weights) with a warning naming it; `finished_checkpoint` spots a
run killed after its last checkpoint; `metrics.jsonl` is appended line by line, fsynced
(`focalpo.train.trainer.MetricsCallback`), and read back by `read_metrics`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from focalpo.config import dump_config

CONFIG_NAME = "train_config.yaml"
METRICS_NAME = "metrics.jsonl"


def prepare_output(cfg, *, clear: bool = True) -> str | None:
    """Check (and with `overwrite` and `clear`, clear) the output directory; the checkpoint to resume from.

    In a multi-process run every rank checks with `clear=False` before any rank writes, then the
    main process clears (`clear_output`): a rank that checked after the main process had written
    its config would otherwise see a busy directory and fail.
    """
    out = Path(cfg.output)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: output exists and is not a directory")
    # a directory holding only the config a run wrote as it started (then failed, or was killed) is empty
    busy = out.is_dir() and any(p.name != CONFIG_NAME for p in out.iterdir())
    if cfg.resume:
        return last_complete_checkpoint(out) if busy else None
    if busy and not cfg.overwrite:
        raise FileExistsError(
            f"{out}: output directory is not empty; pass --overwrite to replace its checkpoints and metrics, "
            "or --resume to continue from its last checkpoint"
        )
    if busy and clear:
        clear_output(out)
    return None


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest `checkpoint-N` in `out` that was written to the end, or None.

    transformers writes a checkpoint's weights, optimizer, scheduler and RNG states, then its
    `trainer_state.json`; a kill during the save leaves a directory without that file (or with a
    torn one), from which no run can resume. Such checkpoints are skipped with a warning naming them;
    the previous one is intact.
    """
    import warnings

    steps = []
    for ckpt in out.glob("checkpoint-*"):
        suffix = ckpt.name.removeprefix("checkpoint-")
        if ckpt.is_dir() and suffix.isdigit():
            steps.append((int(suffix), ckpt))
    for _, ckpt in sorted(steps, reverse=True):
        why = _incomplete(ckpt)
        if why is None:
            return str(ckpt)
        warnings.warn(f"{ckpt}: skipped, {why} (a save interrupted by a crash); resuming from an earlier checkpoint")
    return None


def _incomplete(ckpt: Path) -> str | None:
    """Why `ckpt` cannot be resumed from, or None."""
    import json

    state = ckpt / "trainer_state.json"
    try:
        json.loads(state.read_text())
    except FileNotFoundError:
        return "no trainer_state.json"
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "trainer_state.json is torn"
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
               "adapter_model.safetensors", "adapter_model.bin")
    if not any((ckpt / w).is_file() for w in weights) and not any(ckpt.glob("global_step*")):  # DeepSpeed: shards
        return "no model weights"
    return None


def clear_output(out: Path) -> None:
    """Remove only what a new run would otherwise mix with: old checkpoints and appended metrics."""
    for ckpt in out.glob("checkpoint-*"):
        shutil.rmtree(ckpt)
    (out / METRICS_NAME).unlink(missing_ok=True)


def start_output(cfg, state, config_name: str) -> Path:
    """After every rank has checked the output (`prepare_output`): the main process clears it for
    --overwrite and writes the resolved config; all ranks wait for that. Returns the directory."""
    state.wait_for_everyone()
    out = Path(cfg.output)
    if state.is_main_process:
        if cfg.overwrite and not cfg.resume and out.is_dir():
            clear_output(out)
        dump_config(cfg, out / config_name)
    state.wait_for_everyone()
    return out


def finished_checkpoint(resume_from: str | None, max_steps: int) -> dict | None:
    """The trainer state of `resume_from` when it is the run's last step (`max_steps` reached), else None.

    transformers would resume such a checkpoint into one more optimiser step when `max_steps` ends
    inside an epoch (it skips the epoch's trained batches, steps, then sees the limit), so the run
    finishes from the checkpoint instead."""
    import json

    if resume_from is None or max_steps is None or max_steps <= 0:
        return None
    state = json.loads((Path(resume_from) / "trainer_state.json").read_text())
    return {**state, "checkpoint": resume_from} if state.get("global_step", 0) >= max_steps else None


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl; a bad line is a ValueError naming file:line."""
    from focalpo.io import iter_json_rows

    return [row for _, row in iter_json_rows(path)]
