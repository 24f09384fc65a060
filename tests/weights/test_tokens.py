"""Tests of focalpo.weights.tokens: ids identical to TRL 1.16's, the token rule, conversational spans through the template.

Run: .venv/bin/python -m pytest tests/weights/test_tokens.py -q

The tokenizer (fixture `tokenizer`, tests/weights/conftest.py) is a byte-level BPE trained on
stdlib source (no downloads), with BOS added by its post-processor, EOS/pad tokens and a small
chat template.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from weights_helpers import make_conv_pairs, decode_weighted, make_pairs, trl_rows, trl_tokenize

from focalpo.weights import CharWeights, compute_weighted_examples, token_weights


# --------------------------------------------------------------------------------------------------
# ids identical to TRL 1.16


@pytest.mark.parametrize("conversational", [False, True])
def test_ids_identical_to_trl(tokenizer, conversational):
    pairs = make_conv_pairs() if conversational else make_pairs()
    trl = trl_tokenize(trl_rows(pairs), tokenizer)
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
# conversational spans map through the template


def test_conversational_spans_map_through_the_template(tokenizer):
    ex = compute_weighted_examples(make_conv_pairs()[:1], tokenizer, "symmetric")[0]
    decoded = decode_weighted(tokenizer, ex["chosen_input_ids"], ex["chosen_weights"])
    assert decoded.split() == "if x >= 0: return total / count".split()
    tail = tokenizer.convert_ids_to_tokens(ex["chosen_input_ids"][-2:])
    assert tail == ["<|end|>", "Ċ"] and ex["chosen_weights"][-2:] == [0.0, 0.0]  # end of turn = suffix
    focused = compute_weighted_examples(make_conv_pairs()[:1], tokenizer, "focused")[0]
    assert focused["chosen_weights"][-2:] == [1.0, 1.0] and focused["rejected_weights"][-2:] == [0.0, 0.0]


def test_template_that_rewrites_content_is_an_error(tokenizer):
    bad = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, eos_token="</s>")
    bad.chat_template = "{% for m in messages %}{{ m['content'] | upper }}\n{% endfor %}"
    with pytest.raises(ValueError, match="pair 0: the chat template does not render the assistant content verbatim"):
        compute_weighted_examples(make_conv_pairs()[:1], bad, "target")
