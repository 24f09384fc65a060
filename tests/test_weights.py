"""Tests of focalpo.weights: TRL-identical ids, the token rule, every scheme's shape, and the cache.

Run: .venv/bin/python -m pytest tests/test_weights.py -q

The tokenizer is a byte-level BPE trained here on stdlib source (no downloads), with BOS added by
its post-processor, EOS/pad tokens and a small chat template.
"""

from __future__ import annotations

import inspect
import random
import re
import types
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focalpo.localize import localize_pair
from focalpo.pairs import PreferencePair
from focalpo.weights import (
    SCHEMES,
    CharWeights,
    build_weighted_examples,
    compute_weighted_examples,
    token_weights,
    weighted_token_fraction,
)
from focalpo.weights import build as build_module
from focalpo.weights.schemes import line_spans_claim

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

REJECTED = """\
def average_positive(xs):
    total = 0
    count = 0
    for x in xs:
        if x > 0:
            total += x
            count += 1
    return total / len(xs)
"""
CHOSEN = REJECTED.replace("        if x > 0:\n", "        if x >= 0:\n").replace("total / len(xs)", "total / count")


@pytest.fixture(scope="module")
def tokenizer():
    import difflib
    import textwrap

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1200, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([inspect.getsource(difflib), inspect.getsource(textwrap)], trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _pairs() -> list[PreferencePair]:
    rows = [
        ("Write average_positive.\n", CHOSEN, REJECTED),
        ("def add(a, b):\n    ", "return a + b\n", "return a - b\n"),  # prompt ends mid-line: tokens merge
        ("", "x = 1\n", "x = 1\ny = 2\n"),
        ("p", "same\n", "same\n"),
        ("Fix it.\n", "ok</s>", "bad\n</s>"),  # completions already ending with EOS
    ]
    return [localize_pair(p, c, r) for p, c, r in rows]


def _conv_pairs() -> list[PreferencePair]:
    user = [{"role": "system", "content": "Answer with code."}, {"role": "user", "content": "Write average_positive."}]
    return [
        localize_pair(user, [{"role": "assistant", "content": c}], [{"role": "assistant", "content": r}])
        for c, r in [(CHOSEN, REJECTED), ("x = 1", "x = 2")]
    ]


def _trl_rows(pairs):
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]


def _trl_tokenize(rows, tokenizer, max_length=None):
    """TRL 1.16's own dataset preparation (DPOTrainer._prepare_dataset) on `rows`."""
    import datasets
    from trl.trainer.dpo_trainer import DPOTrainer

    datasets.disable_progress_bars()
    stub = types.SimpleNamespace(_tokenizer=tokenizer)
    args = types.SimpleNamespace(dataset_num_proc=None, max_length=max_length, truncation_mode="keep_start")
    return list(DPOTrainer._prepare_dataset(stub, datasets.Dataset.from_list(rows), tokenizer, args, "train"))


def _decode_weighted(tokenizer, ids, weights, value=1.0) -> str:
    return "".join(tokenizer.decode([i]) for i, w in zip(ids, weights) if w == value)


# --------------------------------------------------------------------------------------------------
# ids identical to TRL 1.16


@pytest.mark.parametrize("conversational", [False, True])
def test_ids_identical_to_trl(tokenizer, conversational):
    pairs = _conv_pairs() if conversational else _pairs()
    trl = _trl_tokenize(_trl_rows(pairs), tokenizer)
    for scheme in ("dpo", "target", "focused"):
        ours = compute_weighted_examples(pairs, tokenizer, scheme)
        assert len(ours) == len(trl)
        for ex, t in zip(ours, trl):
            assert ex["prompt_input_ids"] == t["prompt_ids"]
            assert ex["chosen_input_ids"] == t["chosen_ids"]
            assert ex["rejected_input_ids"] == t["rejected_ids"]
            assert len(ex["chosen_weights"]) == len(ex["chosen_input_ids"])
            assert len(ex["rejected_weights"]) == len(ex["rejected_input_ids"])
    if not conversational:
        assert trl[0]["prompt_ids"][0] == tokenizer.bos_token_id  # BOS from the post-processor
        assert all(t["chosen_ids"][-1] == tokenizer.eos_token_id for t in trl)


def test_truncation_matches_trl_collator(tokenizer):
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    pairs = _pairs()
    max_length = 12
    trl = _trl_tokenize(_trl_rows(pairs), tokenizer, max_length=max_length)
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
    pairs = _pairs()[:1]
    full = compute_weighted_examples(pairs, tokenizer)[0]
    cut = compute_weighted_examples(pairs, tokenizer, max_prompt_length=3)[0]
    assert cut["prompt_input_ids"] == full["prompt_input_ids"][-3:]
    assert cut["chosen_input_ids"] == full["chosen_input_ids"]


# --------------------------------------------------------------------------------------------------
# the token rule (pure)


def test_token_rule_overlap_straddle_zero_width_and_end():
    w = CharWeights(focal=((4, 8),), focal_weight=2.0, background=((0, 1.0), (9, 0.5)), end=0.25)
    offsets = [(-3, 1), (1, 3), (3, 5), (5, 7), (7, 7), (8, 10), (10, 12), (0, 0), (12, 14)]
    # (-3, 1) reaches into the prompt: background of char 0 -> 1; (3, 5) straddles into [4, 8) -> 2;
    # (7, 7) zero-width, placed where (5, 7) ended: 7 is in [4, 8) -> 2; (8, 10) touches 8, not in,
    # first char 8 is before the step at 9 -> 1; (0, 0) zero-width after (10, 12): at 12 = end -> 0.25
    assert token_weights(offsets, w, end=12) == [1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 0.5, 0.25, 0.25]
    shifted = [(s + 100, e + 100) if (s, e) != (0, 0) else (0, 0) for s, e in offsets]
    assert token_weights(shifted, w, end=12, origin=100) == token_weights(offsets, w, end=12)


def _naive_token_weights(offsets, w: CharWeights, end: int) -> list[float]:
    out, prev_end = [], 0
    for s, e in offsets:
        if s == e:
            s = e = prev_end
        prev_end = e
        claims = (lambda a, b: a <= s < b) if w.focal_by == "start" else (lambda a, b: s < b and a < max(e, s + 1))
        if any(claims(a, b) for a, b in w.focal):
            out.append(w.focal_weight)
        elif s >= end:
            out.append(w.end)
        else:
            out.append(max((step for step in w.background if step[0] <= max(s, 0)), key=lambda st: st[0])[1])
    return out


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 30), min_size=1, max_size=12),
    zero=st.sets(st.integers(0, 12)),
    spans=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 5)), max_size=4),
    step=st.integers(0, 30),
    end=st.integers(0, 32),
    focal_by=st.sampled_from(["overlap", "start"]),
)
def test_token_rule_matches_naive_loop(cuts, zero, spans, step, end, focal_by):
    bounds = sorted(set(cuts))
    offsets = list(zip([0] + bounds, bounds))
    offsets = [(0, 0) if i in zero else o for i, o in enumerate(offsets)]
    focal, prev = [], 0
    for a, n in sorted(spans):
        if a >= prev:
            focal.append((a, a + n))
            prev = a + n
    background = ((0, 1.0), (step, 0.5)) if step else ((0, 1.0),)
    w = CharWeights(focal=tuple(focal), focal_weight=2.0, background=background, end=0.0, focal_by=focal_by)
    assert token_weights(offsets, w, end) == _naive_token_weights(offsets, w, end)


def test_token_rule_unsorted_offsets_reset():
    w = CharWeights(focal=((0, 2),), background=((0, 0.0),), end=0.0)
    assert token_weights([(4, 5), (0, 1), (1, 3)], w, end=5) == [0.0, 1.0, 1.0]
    by_start = CharWeights(focal=((1, 4),), background=((0, 0.0),), end=0.0, focal_by="start")
    assert token_weights([(4, 5), (0, 2), (2, 3)], by_start, end=5) == [0.0, 0.0, 1.0]  # (0, 2) starts before the span
    assert token_weights([(0, 2), (2, 3), (4, 5)], by_start, end=5) == [0.0, 1.0, 0.0]


# --------------------------------------------------------------------------------------------------
# schemes on real tokens


def _one(tokenizer, pair, scheme, **options):
    return compute_weighted_examples([pair], tokenizer, scheme, **options)[0]


def test_dpo_and_rpo_are_all_ones(tokenizer):
    for ex in compute_weighted_examples(_pairs() + _conv_pairs(), tokenizer, "dpo"):
        assert set(ex["chosen_weights"]) == set(ex["rejected_weights"]) == {1.0} and ex["nll"] is False
    assert all(ex["nll"] for ex in compute_weighted_examples(_pairs(), tokenizer, "rpo"))
    assert SCHEMES["rpo"].nll and SCHEMES["target-rpo"].nll and not SCHEMES["target"].nll


def test_target_weights_exactly_the_d_minus_tokens(tokenizer):
    pair = _pairs()[0]
    ex = _one(tokenizer, pair, "target")
    assert set(ex["chosen_weights"]) == {1.0}
    assert set(ex["rejected_weights"]) == {0.0, 1.0}
    # The weighted tokens spell the two changed lines (their newline token carries the next indent).
    decoded = _decode_weighted(tokenizer, ex["rejected_input_ids"], ex["rejected_weights"])
    assert decoded.split() == "if x > 0: return total / len(xs)".split()
    assert ex["rejected_weights"][-1] == 0.0  # EOS belongs to the suffix, outside D-
    # w = 0 exactly on tokens that do not start in a D- span
    enc = tokenizer(pair.prompt + pair.rejected + "</s>", return_offsets_mapping=True)
    n = len(ex["prompt_input_ids"])
    offsets = [(s - len(pair.prompt), e - len(pair.prompt)) for s, e in enc["offset_mapping"][n:]]
    inside = [any(a <= s < b for a, b in pair.rejected_spans) for s, e in offsets]  # whole lines: tokens starting in them
    assert [w == 1.0 for w in ex["rejected_weights"]] == inside


def _official_token_mask(tokenizer, prompt: str, completion: str, changed: list[int], n_prompt: int, n: int) -> list[float]:
    """The official Target-DPO line -> token ranges (scripts/diff_lib.py, get_precise_line_positions):
    line k starts at len(encode(text before it)), lines split with keepends; here on prompt +
    completion, as TRL tokenizes the pair. Independent of focalpo's offsets and spans."""
    lines = completion.splitlines(keepends=True)  # the EOS string is stripped first, as there
    bounds = [len(tokenizer.encode(prompt + "".join(lines[:k]))) - n_prompt for k in range(len(lines) + 1)]
    return [1.0 if any(bounds[k] <= t < bounds[k + 1] for k in changed) else 0.0 for t in range(n)]


@pytest.mark.parametrize("lines", ["whole", "content"])
def test_whole_line_spans_weigh_the_tokens_the_official_code_marks(tokenizer, lines):
    """With a BPE tokenizer a newline and the next line's indentation are one token ("\\n        ").
    Whole-line D- spans claim the tokens that start in them, as the official code's prefix
    encodes count them: exactly its mask. (Claiming every overlapping token would also take the
    token that ends the line before each changed one.) Content-only spans, overlap rule: the same
    tokens here."""
    pair = localize_pair("Write average_positive.\n", CHOSEN, REJECTED, lines=lines)
    assert line_spans_claim(pair) == ("start" if lines == "whole" else "overlap")
    ex = _one(tokenizer, pair, "target")
    rejected_lines = pair.rejected.splitlines(keepends=True)
    changed = [k for k, line in enumerate(rejected_lines) if line.strip() in ("if x > 0:", "return total / len(xs)")]
    n_prompt = len(ex["prompt_input_ids"])
    official = _official_token_mask(tokenizer, pair.prompt, pair.rejected, changed, n_prompt, len(ex["rejected_input_ids"]))
    assert ex["rejected_weights"] == official
    if lines == "whole":  # the overlap rule on the same spans differs: one more token per changed line
        overlap = replace(pair, meta={})
        assert sum(_one(tokenizer, overlap, "target")["rejected_weights"]) == sum(official) + len(changed)


def test_target_rpo_is_target_plus_nll(tokenizer):
    pairs = _pairs()
    a, b = (compute_weighted_examples(pairs, tokenizer, s) for s in ("target", "target-rpo"))
    assert [x["rejected_weights"] for x in a] == [x["rejected_weights"] for x in b]
    assert [x["nll"] for x in b] == [True] * len(pairs)


def _runs(weights) -> str:
    """Run-length shape: [1, 1, 2, 2, 0] -> '1 2 0'."""
    out = []
    for w in weights:
        s = f"{w:g}"
        if not out or out[-1] != s:
            out.append(s)
    return " ".join(out)


def test_focused_shape_and_options(tokenizer):
    pair = localize_pair("Write it.\n", "a = 1\nb = 2\nc = 3\nd = 4\n", "a = 1\nb = 9\nc = 8\nd = 4\n")
    ex = _one(tokenizer, pair, "focused")
    assert _runs(ex["chosen_weights"]) == "1 2 1"  # prefix 1, middle w=2, suffix + EOS 1
    assert _runs(ex["rejected_weights"]) == "1 2 0"  # suffix and EOS dropped
    c_prefix = ex["chosen_weights"].index(2.0)
    assert c_prefix == ex["rejected_weights"].index(2.0)  # the shared prefix is the same tokens: it cancels
    assert ex["chosen_input_ids"][:c_prefix] == ex["rejected_input_ids"][:c_prefix]
    ex = _one(tokenizer, pair, "focused", w_focused=3.0, weight_rejected_mid=False, drop_rejected_suffix=False)
    assert _runs(ex["chosen_weights"]) == "1 3 1" and set(ex["rejected_weights"]) == {1.0}


def test_symmetric_only_regions_on_both_sides(tokenizer):
    ex = _one(tokenizer, _pairs()[0], "symmetric")
    decoded = _decode_weighted(tokenizer, ex["chosen_input_ids"], ex["chosen_weights"])
    assert decoded.split() == "if x >= 0: return total / count".split()
    assert ex["chosen_weights"][-1] == ex["rejected_weights"][-1] == 0.0


def test_diff_aug_widens_d_minus_by_n_lines(tokenizer):
    pair = localize_pair("", "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n", "a = 1\nb = 2\nc = 0\nd = 4\ne = 5\n")
    lines = lambda ex: _decode_weighted(tokenizer, ex["rejected_input_ids"], ex["rejected_weights"])  # noqa: E731
    assert lines(_one(tokenizer, pair, "diff-aug", context_lines=0)) == lines(_one(tokenizer, pair, "target")) == "c = 0\n"
    assert lines(_one(tokenizer, pair, "diff-aug", context_lines=1)) == "b = 2\nc = 0\nd = 4\n"
    assert lines(_one(tokenizer, pair, "diff-aug", context_lines=2)) == "a = 1\nb = 2\nc = 0\nd = 4\ne = 5\n"
    # Default: n drawn from {1, 2} per pair, seeded: both values occur, and the draw repeats exactly.
    many = [pair] * 40
    counts = [sum(build_module.compute_weighted_examples(many, tokenizer, "diff-aug", seed=s)[i]["rejected_weights"]) for s in (0, 1) for i in range(40)]
    assert len(set(counts)) == 2
    again = [sum(ex["rejected_weights"]) for ex in compute_weighted_examples(many, tokenizer, "diff-aug", seed=0)]
    assert again == counts[:40]


def test_hybrid_fraction_is_seeded_and_deterministic(tokenizer):
    pairs = [_pairs()[0]] * 200
    target = compute_weighted_examples(pairs[:1], tokenizer, "target")[0]["rejected_weights"]
    ones = [1.0] * len(target)

    def dpo_count(seed, **options):
        exs = compute_weighted_examples(pairs, tokenizer, "hybrid", seed=seed, **options)
        if options.get("base", "target") == "target":
            assert all(ex["rejected_weights"] in (target, ones) for ex in exs)
        return sum(ex["rejected_weights"] == ones for ex in exs)

    assert dpo_count(0, fraction=0.0) == 0 and dpo_count(0, fraction=1.0) == 200
    half = dpo_count(0)
    assert 70 <= half <= 130 and dpo_count(0) == half  # about half, and the same pairs every run
    assert dpo_count(1) != half  # another seed, another draw
    assert dpo_count(0, fraction=0.5, base="focused", w_focused=3.0) == half  # same choice, other base
    rpo = compute_weighted_examples(pairs, tokenizer, "hybrid", base="target-rpo")
    assert sum(ex["rejected_weights"] == ones for ex in rpo) == half
    assert all(ex["nll"] for ex in rpo)  # one NLL setting per run: the base's, on every pair


def test_weighted_token_fraction():
    examples = [
        {"chosen_weights": [1.0, 1.0], "rejected_weights": [0.0, 1.0, 0.0]},
        {"chosen_weights": [2.0, 0.0], "rejected_weights": [0.0]},
    ]
    assert weighted_token_fraction(examples) == {"chosen": 0.75, "rejected": 0.25}
    assert weighted_token_fraction([]) == {"chosen": 0.0, "rejected": 0.0}


# --------------------------------------------------------------------------------------------------
# conversational spans map through the template


def test_conversational_spans_map_through_the_template(tokenizer):
    ex = compute_weighted_examples(_conv_pairs()[:1], tokenizer, "symmetric")[0]
    decoded = _decode_weighted(tokenizer, ex["chosen_input_ids"], ex["chosen_weights"])
    assert decoded.split() == "if x >= 0: return total / count".split()
    tail = tokenizer.convert_ids_to_tokens(ex["chosen_input_ids"][-2:])
    assert tail == ["<|end|>", "Ċ"] and ex["chosen_weights"][-2:] == [0.0, 0.0]  # end of turn = suffix
    focused = compute_weighted_examples(_conv_pairs()[:1], tokenizer, "focused")[0]
    assert focused["chosen_weights"][-2:] == [1.0, 1.0] and focused["rejected_weights"][-2:] == [0.0, 0.0]


def test_template_that_rewrites_content_is_an_error(tokenizer):
    bad = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, eos_token="</s>")
    bad.chat_template = "{% for m in messages %}{{ m['content'] | upper }}\n{% endfor %}"
    with pytest.raises(ValueError, match="pair 0: the chat template does not render the assistant content verbatim"):
        compute_weighted_examples(_conv_pairs()[:1], bad, "target")


# --------------------------------------------------------------------------------------------------
# errors


def test_errors_name_scheme_option_and_pair(tokenizer):
    with pytest.raises(ValueError, match="unknown weight scheme 'targeted' \\(known: dpo, rpo, target"):
        build_weighted_examples(_pairs(), tokenizer, "targeted", use_cache=False)
    with pytest.raises(ValueError, match="scheme 'focused' has no option 'w' \\(options: drop_rejected_suffix"):
        build_weighted_examples(_pairs(), tokenizer, "focused", w=2, use_cache=False)
    raw = [PreferencePair("p", "a", "b", meta={"source": "trl.jsonl:4"})]
    with pytest.raises(ValueError, match=r"^pair 0 \(trl.jsonl:4\): field 'rejected_spans': missing, and weight scheme 'target'"):
        build_weighted_examples(raw, tokenizer, "target", use_cache=False)
    with pytest.raises(ValueError, match="field 'prefix_len': missing"):
        build_weighted_examples(raw, tokenizer, "hybrid", base="focused", use_cache=False)
    assert build_weighted_examples(raw, tokenizer, "dpo", use_cache=False)[0]["chosen_weights"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="scheme 'hybrid': option 'fraction' must be in \\[0, 1\\], got 1.5"):
        build_weighted_examples(_pairs(), tokenizer, "hybrid", fraction=1.5, use_cache=False)
    with pytest.raises(ValueError, match="option 'weight_rejected_mid' must be like True, got 'maybe'"):
        build_weighted_examples(_pairs(), tokenizer, "focused", weight_rejected_mid="maybe", use_cache=False)
    with pytest.raises(ValueError, match="not a fast tokenizer"):
        compute_weighted_examples(raw, types.SimpleNamespace(is_fast=False))


# --------------------------------------------------------------------------------------------------
# cache


def test_cache_hit_is_identical_and_options_invalidate(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("FOCALPO_CACHE", str(tmp_path))
    pairs = _pairs() + _conv_pairs()
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
    pairs = _pairs()
    first = build_weighted_examples(pairs, tokenizer, "target", cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"not a zip")
    assert build_weighted_examples(pairs, tokenizer, "target", cache_dir=tmp_path) == first


def test_options_from_strings_are_coerced():
    from focalpo.weights.schemes import resolve_options

    _, options, needs, nll = resolve_options("focused", {"w_focused": "3", "drop_rejected_suffix": "false"})
    assert options == {"w_focused": 3.0, "weight_rejected_mid": True, "drop_rejected_suffix": False}
    _, options, needs, nll = resolve_options("hybrid", {"base": "target-rpo"})
    assert options == {"fraction": 0.5, "base": "target-rpo"} and needs == ("rejected_spans",) and nll is True
    assert resolve_options("diff-aug", {"context_lines": "none"})[1] == {"context_lines": None}
    assert resolve_options("diff-aug", {"context_lines": "2"})[1] == {"context_lines": 2}
    with pytest.raises(ValueError, match="option 'context_lines' must be >= 0 or None, got -1"):
        resolve_options("diff-aug", {"context_lines": -1})
    with pytest.raises(ValueError, match="option 'base' cannot be 'hybrid'"):
        resolve_options("hybrid", {"base": "hybrid"})


def test_rng_is_per_pair():
    assert build_module.pair_rng(0, 5).random() == build_module.pair_rng(0, 5).random()
    assert build_module.pair_rng(0, 5).random() != build_module.pair_rng(1, 5).random()
    assert isinstance(build_module.pair_rng(0, 0), random.Random)
    assert re.fullmatch(r"[0-9a-f]{64}", build_module.pairs_fingerprint(_pairs()))


def test_the_cache_key_tells_whole_line_spans_from_the_same_spans_claimed_by_overlap():
    """Unindented changed lines: whole-line and content spans are the same characters, but whole
    lines claim the tokens that start in them, so the two must not share cached weights."""
    whole = localize_pair("p\n", "a = 1\nb = 2\n", "a = 1\nb = 3\n")
    content = localize_pair("p\n", "a = 1\nb = 2\n", "a = 1\nb = 3\n", lines="content")
    assert whole.rejected_spans == content.rejected_spans
    assert build_module.pairs_fingerprint([whole]) != build_module.pairs_fingerprint([content])
    assert build_module.pairs_fingerprint([whole]) == build_module.pairs_fingerprint([replace(whole, meta={**whole.meta, "id": 3})])
