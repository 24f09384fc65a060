"""Tests of focalpo.train.collate.PreferenceCollator: exact tensors on a hand batch, truncation, errors.

Run: .venv/bin/python -m pytest tests/train/test_collate.py -q
"""

from __future__ import annotations

import pytest
import torch

from focalpo.train.collate import PreferenceCollator

EXAMPLES = [
    {"prompt_input_ids": [1, 2, 3], "chosen_input_ids": [4, 5], "rejected_input_ids": [6],
     "chosen_weights": [1.0, 2.0], "rejected_weights": [0.5]},
    {"prompt_input_ids": [7, 8], "chosen_input_ids": [9], "rejected_input_ids": [10, 11],
     "chosen_weights": [1.0], "rejected_weights": [0.0, 3.0]},
]


def test_hand_batch_layout():
    """Rows: chosen 0, chosen 1, rejected 0, rejected 1 (TRL's layout), right-padded with 0."""
    b = PreferenceCollator(pad_token_id=0)(EXAMPLES)
    assert b["input_ids"].tolist() == [[1, 2, 3, 4, 5], [7, 8, 9, 0, 0], [1, 2, 3, 6, 0], [7, 8, 10, 11, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]]
    assert b["completion_mask"].tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 1, 0]]
    assert b["loss_weights"].tolist() == [
        [0, 0, 0, 1, 2], [0, 0, 1, 0, 0], [0, 0, 0, 0.5, 0], [0, 0, 0, 3, 0]
    ]
    assert b["loss_weights"].dtype == torch.float32 and b["input_ids"].dtype == torch.long
    assert "ref_chosen_logps" not in b


def test_keep_start_truncation_and_padding_multiple():
    b = PreferenceCollator(pad_token_id=0, max_length=4, pad_to_multiple_of=3)(EXAMPLES)
    assert b["input_ids"].tolist() == [[1, 2, 3, 4, 0, 0], [7, 8, 9, 0, 0, 0], [1, 2, 3, 6, 0, 0], [7, 8, 10, 11, 0, 0]]
    assert b["loss_weights"][0].tolist() == [0, 0, 0, 1, 0, 0]  # the weight of the cut token went with it


def test_reference_logps_pass_through():
    exs = [{**e, "ref_chosen_logps": -1.5 * i, "ref_rejected_logps": -2.0} for i, e in enumerate(EXAMPLES)]
    b = PreferenceCollator(pad_token_id=0)(exs)
    assert b["ref_chosen_logps"].tolist() == [0.0, -1.5] and b["ref_rejected_logps"].tolist() == [-2.0, -2.0]


def test_errors_name_example_and_field():
    bad = {**EXAMPLES[0], "pair_index": 17, "rejected_weights": [1.0, 1.0]}
    with pytest.raises(ValueError, match=r"example pair_index=17: field 'rejected_weights' has 2 values for 1"):
        PreferenceCollator(pad_token_id=0)([EXAMPLES[1], bad])
    missing = {k: v for k, v in EXAMPLES[0].items() if k != "chosen_weights"}
    with pytest.raises(ValueError, match=r"example 1 of the batch: missing field 'chosen_weights'"):
        PreferenceCollator(pad_token_id=0)([EXAMPLES[1], missing])
