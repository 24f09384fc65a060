"""Tests of focalpo.weights.build: truncation as TRL's, scheme/option/pair errors, the token fraction, the cache.

Run: .venv/bin/python -m pytest tests/weights/test_build.py -q

The tokenizer (fixture `tokenizer`, tests/weights/conftest.py) is a byte-level BPE trained on
stdlib source (no downloads), with BOS added by its post-processor, EOS/pad tokens and a small
chat template.
"""

from __future__ import annotations

import random
import re
import types
from dataclasses import replace

import pytest
from weights_helpers import make_conv_pairs, make_pairs, trl_rows, trl_tokenize

from focalpo.localize import localize_pair
from focalpo.pairs import PreferencePair
from focalpo.weights import build_weighted_examples, compute_weighted_examples, weighted_token_fraction
from focalpo.weights import build as build_module


# --------------------------------------------------------------------------------------------------
# truncation as TRL 1.16


def test_truncation_matches_trl_collator(tokenizer):
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    pairs = make_pairs()
    max_length = 12
    trl = trl_tokenize(trl_rows(pairs), tokenizer, max_length=max_length)
    ours = compute_weighted_examples(pairs, tokenizer, "target", max_length=max_length)
    assert [len(t["prompt_ids"]) < max_length for t in trl] == [True] * len(trl)
    assert len(ours) == len(trl) == 4  # the long prompt of pair 0 fills max_length: dropped, as in TRL
    assert [ex["pair_index"] for ex in ours] == [1, 2, 3, 4]
    batch = DataCollatorForPreference(pad_token_id=0, max_length=max_length)(trl)
    n = len(trl)
    for k, ex in enumerate(ours):
        for row, side in ((k, "chosen"), (n + k, "rejected")):
            ids = ex["prompt_input_ids"] + ex[f"{side}_input_ids"]
            assert len(ids) <= max_length and len(ex[f"{side}_weights"]) == len(ex[f"{side}_input_ids"])
            assert batch["input_ids"][row, : len(ids)].tolist() == ids
            assert int(batch["completion_mask"][row].sum()) == len(ex[f"{side}_input_ids"])


def test_max_prompt_length_keeps_the_prompt_end(tokenizer):
    pairs = make_pairs()[:1]
    full = compute_weighted_examples(pairs, tokenizer)[0]
    cut = compute_weighted_examples(pairs, tokenizer, max_prompt_length=3)[0]
    assert cut["prompt_input_ids"] == full["prompt_input_ids"][-3:]
    assert cut["chosen_input_ids"] == full["chosen_input_ids"]


# --------------------------------------------------------------------------------------------------
# token fraction


def test_weighted_token_fraction():
    examples = [
        {"chosen_weights": [1.0, 1.0], "rejected_weights": [0.0, 1.0, 0.0]},
        {"chosen_weights": [2.0, 0.0], "rejected_weights": [0.0]},
    ]
    assert weighted_token_fraction(examples) == {"chosen": 0.75, "rejected": 0.25}
    assert weighted_token_fraction([]) == {"chosen": 0.0, "rejected": 0.0}


# --------------------------------------------------------------------------------------------------
# errors


def test_errors_name_scheme_option_and_pair(tokenizer):
    with pytest.raises(ValueError, match="unknown weight scheme 'targeted' \\(known: dpo, rpo, target"):
        build_weighted_examples(make_pairs(), tokenizer, "targeted", use_cache=False)
    with pytest.raises(ValueError, match="scheme 'focused' has no option 'w' \\(options: drop_rejected_suffix"):
        build_weighted_examples(make_pairs(), tokenizer, "focused", w=2, use_cache=False)
    raw = [PreferencePair("p", "a", "b", meta={"source": "trl.jsonl:4"})]
    with pytest.raises(ValueError, match=r"^pair 0 \(trl.jsonl:4\): field 'rejected_spans': missing, and weight scheme 'target'"):
        build_weighted_examples(raw, tokenizer, "target", use_cache=False)
    with pytest.raises(ValueError, match="field 'prefix_len': missing"):
        build_weighted_examples(raw, tokenizer, "hybrid", base="focused", use_cache=False)
    assert build_weighted_examples(raw, tokenizer, "dpo", use_cache=False)[0]["chosen_weights"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="scheme 'hybrid': option 'fraction' must be in \\[0, 1\\], got 1.5"):
        build_weighted_examples(make_pairs(), tokenizer, "hybrid", fraction=1.5, use_cache=False)
    with pytest.raises(ValueError, match="option 'weight_rejected_mid' must be like True, got 'maybe'"):
        build_weighted_examples(make_pairs(), tokenizer, "focused", weight_rejected_mid="maybe", use_cache=False)
    with pytest.raises(ValueError, match="not a fast tokenizer"):
        compute_weighted_examples(raw, types.SimpleNamespace(is_fast=False))


# --------------------------------------------------------------------------------------------------
# cache


def test_cache_hit_is_identical_and_options_invalidate(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("FOCALPO_CACHE", str(tmp_path))
    pairs = make_pairs() + make_conv_pairs()
    first = build_weighted_examples(pairs, tokenizer, "focused", max_length=64)
    assert len(list((tmp_path / "weights").glob("*.npz"))) == 1

    calls = []
    real = build_module.compute_weighted_examples
    monkeypatch.setattr(build_module, "compute_weighted_examples", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = build_weighted_examples(pairs, tokenizer, "focused", max_length=64)
    assert again == first and calls == []  # served from disk, element for element
    assert all(type(w) is float for ex in again for w in ex["chosen_weights"])
    assert all(type(i) is int for ex in again for i in ex["chosen_input_ids"]) and type(again[0]["nll"]) is bool
    assert build_weighted_examples(pairs, tokenizer, "focused", max_length=64, w_focused=2.0) == first  # = default
    assert calls == []

    changed = build_weighted_examples(pairs, tokenizer, "focused", max_length=64, w_focused=3.0)
    assert len(calls) == 1 and changed != first
    build_weighted_examples(pairs[:-1], tokenizer, "focused", max_length=64)  # other data
    build_weighted_examples(pairs, tokenizer, "focused", max_length=32)  # other length
    build_weighted_examples(pairs, tokenizer, "focused", max_length=64, seed=1)
    assert len(calls) == 4 and len(list((tmp_path / "weights").glob("*.npz"))) == 5
    assert len(list((tmp_path / "weights").glob("*.json"))) == 5  # settings next to each artefact


def test_damaged_cache_file_is_recomputed(tokenizer, tmp_path):
    pairs = make_pairs()
    first = build_weighted_examples(pairs, tokenizer, "target", cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"not a zip")
    assert build_weighted_examples(pairs, tokenizer, "target", cache_dir=tmp_path) == first


def test_rng_is_per_pair():
    assert build_module.pair_rng(0, 5).random() == build_module.pair_rng(0, 5).random()
    assert build_module.pair_rng(0, 5).random() != build_module.pair_rng(1, 5).random()
    assert isinstance(build_module.pair_rng(0, 0), random.Random)
    assert re.fullmatch(r"[0-9a-f]{64}", build_module.pairs_fingerprint(make_pairs()))


def test_the_cache_key_tells_whole_line_spans_from_the_same_spans_claimed_by_overlap():
    """Unindented changed lines: whole-line and content spans are the same characters, but whole
    lines claim the tokens that start in them, so the two must not share cached weights."""
    whole = localize_pair("p\n", "a = 1\nb = 2\n", "a = 1\nb = 3\n")
    content = localize_pair("p\n", "a = 1\nb = 2\n", "a = 1\nb = 3\n", lines="content")
    assert whole.rejected_spans == content.rejected_spans
    assert build_module.pairs_fingerprint([whole]) != build_module.pairs_fingerprint([content])
    assert build_module.pairs_fingerprint([whole]) == build_module.pairs_fingerprint([replace(whole, meta={**whole.meta, "id": 3})])
