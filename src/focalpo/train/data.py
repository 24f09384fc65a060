"""The examples of `focalpo train`: pairs weighted by the scheme (or pre-weighted examples), the validation split.

    examples = load_examples(cfg, tokenizer)               # bad data raises naming file:line, before any write
    examples, held = eval_examples(cfg, tokenizer, examples)   # eval_data, or eval_fraction held out by hash
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from focalpo.config import ConfigError
from focalpo.train.config import TrainConfig


def _first_record(path: str) -> dict | None:
    from focalpo.datasets_io import iter_source_rows

    for _, row in iter_source_rows(path, objects=False):
        return row
    return None


def read_weighted_examples(path: str | Path) -> list[dict]:
    """Pre-weighted examples (the output of focalpo.weights, one JSON object per row), checked."""
    from focalpo.datasets_io import iter_source_rows
    from focalpo.train.collate import check_example

    out = []
    for where, row in iter_source_rows(path, objects=False):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object")
        row = {**row, "_line": where}
        check_example(row)  # errors start with "file:line"
        out.append(row)
    return out


def load_examples(cfg: TrainConfig, tokenizer) -> list[dict]:
    """Weighted token examples of `cfg.data` (a pairs file, parquet, a save_to_disk directory or a Hub id:
    `focalpo.pairs.read_pairs`): built with the scheme from pairs, or read as they are."""
    from focalpo.datasets_io import source_kind

    from focalpo.datasets_io import data_source

    path = data_source(cfg.data, cfg.split, cfg.columns)
    try:
        source_kind(path)  # a missing file fails here, before anything is written
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: data file not found (nor a directory or a Hub dataset id)") from None
    first = _first_record(path)
    if first is None:
        raise ValueError(f"{path}: no records")
    if isinstance(first, dict) and "chosen_input_ids" in first:
        examples = read_weighted_examples(path)
    else:
        from focalpo.pairs import read_pairs
        from focalpo.weights import build_weighted_examples

        examples = build_weighted_examples(
            read_pairs(path), tokenizer, cfg.scheme, max_length=cfg.max_length,
            max_prompt_length=cfg.max_prompt_length, seed=cfg.seed, **cfg.scheme_options,
        )
    if cfg.max_length is not None:  # as TRL: a prompt that fills max_length leaves no completion token
        examples = [ex for ex in examples if len(ex["prompt_input_ids"]) < cfg.max_length]
    if not examples:
        raise ValueError(f"{path}: no usable examples (every prompt is longer than max_length={cfg.max_length})")
    return examples


def split_eval(examples: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """(train, eval): an example is held out when a hash of its tokens falls in the first `fraction` of
    the hash range, so the split does not depend on the file's order, the run's seed or the scheme."""
    import json

    from focalpo.runs import stable_hash

    if not 0 <= fraction < 1:
        raise ConfigError(f"field 'eval_fraction': expected 0 <= value < 1, got {fraction}")
    train_part, eval_part = [], []
    for ex in examples:
        h = stable_hash(json.dumps([ex["prompt_input_ids"], ex["chosen_input_ids"], ex["rejected_input_ids"]])) / 2**64
        (eval_part if h < fraction else train_part).append(ex)
    return train_part, eval_part


def eval_examples(cfg: TrainConfig, tokenizer, examples: list[dict]) -> tuple[list[dict], list[dict]]:
    """(train, validation) examples: `eval_data` read like `data`, or `eval_fraction` of `data` held out."""
    if cfg.eval_data and cfg.eval_fraction:
        raise ConfigError("give either eval_data or eval_fraction, not both")
    if cfg.eval_data:
        held = load_examples(replace(cfg, data=cfg.eval_data, split=cfg.eval_split), tokenizer)
    elif cfg.eval_fraction:
        examples, held = split_eval(examples, cfg.eval_fraction)
        if not held or not examples:
            raise ValueError(f"{cfg.data}: eval_fraction={cfg.eval_fraction} leaves {len(examples)} training and "
                             f"{len(held)} validation examples; both need at least one")
    else:
        return examples, []
    return examples, attach_focus(cfg, tokenizer, held)


def attach_focus(cfg: TrainConfig, tokenizer, examples: list[dict]) -> list[dict]:
    """Validation examples built from localised pairs (LCS spans) get their localised tokens (the
    `symmetric` scheme's weights: 1 on D+ / D-, else 0), matched by pair index and token ids."""
    from focalpo.train.collate import FOCUS_KEYS

    from focalpo.datasets_io import data_source

    path = (data_source(cfg.eval_data, cfg.eval_split, cfg.columns) if cfg.eval_data
            else data_source(cfg.data, cfg.split, cfg.columns))
    first = _first_record(path)
    if not isinstance(first, dict) or "chosen_input_ids" in first:  # pre-weighted examples: no spans
        return examples
    from focalpo.pairs import read_pairs
    from focalpo.weights import build_weighted_examples

    pairs = read_pairs(path)
    wanted = sorted({ex["pair_index"] for ex in examples if "pair_index" in ex})  # the validation pairs only
    if not wanted or any(pairs[i].chosen_spans is None or pairs[i].rejected_spans is None for i in wanted):
        return examples
    focus = {wanted[ex["pair_index"]]: ex for ex in build_weighted_examples(
        [pairs[i] for i in wanted], tokenizer, "symmetric", max_length=cfg.max_length,
        max_prompt_length=cfg.max_prompt_length, seed=cfg.seed)}
    out = []
    for ex in examples:
        f = focus.get(ex.get("pair_index"))
        same = f is not None and all(f[k] == ex[k] for k in ("prompt_input_ids", "chosen_input_ids", "rejected_input_ids"))
        out.append({**ex, FOCUS_KEYS[0]: f["chosen_weights"], FOCUS_KEYS[1]: f["rejected_weights"]} if same else ex)
    return out if all(FOCUS_KEYS[0] in ex for ex in out) else examples


def wants_nll(examples: Sequence[dict], where: str) -> bool:
    flags = {bool(ex.get("nll", False)) for ex in examples}
    if len(flags) > 1:
        raise ValueError(f"{where}: field 'nll' differs between examples; one scheme per run")
    return flags.pop()
