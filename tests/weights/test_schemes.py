"""Tests of focalpo.weights.schemes: every scheme's weights on real tokens, and option coercion.

Run: .venv/bin/python -m pytest tests/weights/test_schemes.py -q

The tokenizer (fixture `tokenizer`, tests/weights/conftest.py) is a byte-level BPE trained on
stdlib source (no downloads), with BOS added by its post-processor, EOS/pad tokens and a small
chat template.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from weights_helpers import CHOSEN, REJECTED, make_conv_pairs, decode_weighted, make_pairs

from focalpo.localize import localize_pair
from focalpo.weights import SCHEMES, compute_weighted_examples
from focalpo.weights import build as build_module
from focalpo.weights.schemes import line_spans_claim


# --------------------------------------------------------------------------------------------------
# schemes on real tokens


def _one(tokenizer, pair, scheme, **options):
    return compute_weighted_examples([pair], tokenizer, scheme, **options)[0]


def test_dpo_and_rpo_are_all_ones(tokenizer):
    for ex in compute_weighted_examples(make_pairs() + make_conv_pairs(), tokenizer, "dpo"):
        assert set(ex["chosen_weights"]) == set(ex["rejected_weights"]) == {1.0} and ex["nll"] is False
    assert all(ex["nll"] for ex in compute_weighted_examples(make_pairs(), tokenizer, "rpo"))
    assert SCHEMES["rpo"].nll and SCHEMES["target-rpo"].nll and not SCHEMES["target"].nll


def test_target_weights_exactly_the_d_minus_tokens(tokenizer):
    pair = make_pairs()[0]
    ex = _one(tokenizer, pair, "target")
    assert set(ex["chosen_weights"]) == {1.0}
    assert set(ex["rejected_weights"]) == {0.0, 1.0}
    # The weighted tokens spell the two changed lines (their newline token carries the next indent).
    decoded = decode_weighted(tokenizer, ex["rejected_input_ids"], ex["rejected_weights"])
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
    pairs = make_pairs()
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
    ex = _one(tokenizer, make_pairs()[0], "symmetric")
    decoded = decode_weighted(tokenizer, ex["chosen_input_ids"], ex["chosen_weights"])
    assert decoded.split() == "if x >= 0: return total / count".split()
    assert ex["chosen_weights"][-1] == ex["rejected_weights"][-1] == 0.0


def test_diff_aug_widens_d_minus_by_n_lines(tokenizer):
    pair = localize_pair("", "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n", "a = 1\nb = 2\nc = 0\nd = 4\ne = 5\n")
    lines = lambda ex: decode_weighted(tokenizer, ex["rejected_input_ids"], ex["rejected_weights"])  # noqa: E731
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
    pairs = [make_pairs()[0]] * 200
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


# --------------------------------------------------------------------------------------------------
# options


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
