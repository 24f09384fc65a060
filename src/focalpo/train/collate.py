"""Batch weighted preference examples into one (2B, T) chosen-then-rejected tensor batch.

    collate = PreferenceCollator(pad_token_id=tok.pad_token_id, max_length=2048)
    batch = collate(examples)       # examples from focalpo.weights.build_weighted_examples

An example is a dict with `prompt_input_ids`, `chosen_input_ids`, `rejected_input_ids` (list[int])
and `chosen_weights`, `rejected_weights` (list[float], one per completion token); optionally
`ref_chosen_logps`, `ref_rejected_logps` (floats, precomputed Σ_t w_t log π_ref).

The layout is TRL 1.16's `DataCollatorForPreference`: rows 0..B−1 are prompt+chosen, rows B..2B−1
prompt+rejected, right-padded; sequences longer than `max_length` are cut at the end (keep_start).
Keys of the batch:

    input_ids       (2B, T) int64, pad_token_id on padding
    attention_mask  (2B, T) int64, 0 on padding
    completion_mask (2B, T) int64, 1 on completion tokens, 0 on prompt and padding
    loss_weights    (2B, T) float32, w_t on completion tokens, 0 on prompt and padding
    ref_chosen_logps, ref_rejected_logps  (B,) float32, only when every example has them
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from focalpo.weights.build import ID_KEYS, WEIGHT_KEYS  # the example format, defined where it is written

REF_KEYS = ("ref_chosen_logps", "ref_rejected_logps")
# validation examples of localised pairs also carry the localised tokens (1 on D+ / D-, else 0) and the
# reference's log-probs summed over them, so that evaluation can report the margin at the error
FOCUS_KEYS = ("chosen_focus", "rejected_focus")
REF_FOCUS_KEYS = ("ref_chosen_focus_logps", "ref_rejected_focus_logps")


def _where(example: dict, i: int) -> str:
    """How an error names an example: its source line, pair index or id when known, else its batch index."""
    if "_line" in example:  # "file:line", set when read from a JSONL of examples
        return str(example["_line"])
    for key in ("pair_index", "id"):
        if key in example:
            return f"example {key}={example[key]!r}"
    return f"example {i} of the batch"


def check_example(example: dict, i: int = 0) -> None:
    """Raise ValueError naming the example and field when it breaks the contract above."""
    for key in ID_KEYS + WEIGHT_KEYS:
        if key not in example:
            raise ValueError(f"{_where(example, i)}: missing field {key!r}")
    for side in ("chosen", "rejected"):
        n_ids, n_w = len(example[f"{side}_input_ids"]), len(example[f"{side}_weights"])
        if n_ids != n_w:
            raise ValueError(
                f"{_where(example, i)}: field '{side}_weights' has {n_w} values for {n_ids} '{side}_input_ids'"
            )
        if n_ids == 0:
            raise ValueError(f"{_where(example, i)}: field '{side}_input_ids' is empty")


def pair_columns(examples: Sequence[dict], keys: Sequence[str]) -> dict[str, torch.Tensor]:
    """The per-pair float fields `keys` (reference sums) as (B,) float32 tensors, when every example has them."""
    if not all(k in ex for ex in examples for k in keys):
        return {}
    return {k: torch.tensor([float(ex[k]) for ex in examples], dtype=torch.float32) for k in keys}


def _pad(rows: Sequence[torch.Tensor], value, length: int) -> torch.Tensor:
    out = torch.full((len(rows), length), value, dtype=rows[0].dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@dataclass
class PreferenceCollator:
    """Pads ids and weights into the (2B, T) batch described in the module docstring."""

    pad_token_id: int
    max_length: int | None = None
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, masks, weights = [], [], []
        for side in ("chosen", "rejected"):
            for i, ex in enumerate(examples):
                check_example(ex, i)
                prompt, completion = ex["prompt_input_ids"], ex[f"{side}_input_ids"]
                ids.append(list(prompt) + list(completion))
                masks.append([0] * len(prompt) + [1] * len(completion))
                weights.append([0.0] * len(prompt) + [float(w) for w in ex[f"{side}_weights"]])
        if self.max_length is not None:  # keep_start, as TRL: the end of long completions is dropped
            ids, masks, weights = ([r[: self.max_length] for r in rows] for rows in (ids, masks, weights))
        length = max(len(r) for r in ids)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": _pad([torch.tensor(r, dtype=torch.long) for r in ids], self.pad_token_id, length),
            "attention_mask": _pad([torch.ones(len(r), dtype=torch.long) for r in ids], 0, length),
            "completion_mask": _pad([torch.tensor(r, dtype=torch.long) for r in masks], 0, length),
            "loss_weights": _pad([torch.tensor(r, dtype=torch.float32) for r in weights], 0.0, length),
        }
        batch.update(pair_columns(examples, REF_KEYS))
        if all(k in ex for ex in examples for k in FOCUS_KEYS + REF_FOCUS_KEYS):
            focus = [[0.0] * len(ex["prompt_input_ids"]) + [float(w) for w in ex[f"{side}_focus"]]
                     for side in ("chosen", "rejected") for ex in examples]
            if self.max_length is not None:
                focus = [r[: self.max_length] for r in focus]
            batch["focus_weights"] = _pad([torch.tensor(r, dtype=torch.float32) for r in focus], 0.0, length)
            batch.update(pair_columns(examples, REF_FOCUS_KEYS))
        return batch
