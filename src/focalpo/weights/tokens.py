"""Tokenise pairs exactly as TRL 1.16's `DPOTrainer` does, keeping each completion token's character offsets.

    tokenized = tokenize_pairs(pairs, tokenizer)   # one TokenizedPair per pair, same ids as TRL
    t = tokenized[0]
    weights = token_weights(t.chosen_offsets, char_weights, t.chosen_end, t.chosen_origin)

TRL 1.16 (`DPOTrainer._prepare_dataset`, `trl.data_utils._tokenize`), reproduced here:

- Plain text: the EOS *string* is appended to chosen and rejected unless they already end with
  it; `tokenizer(prompt)`, `tokenizer(prompt + chosen)` and `tokenizer(prompt + rejected)` are
  tokenized with the tokenizer's default special tokens (BOS if its post-processor adds one).
- Conversational: `apply_chat_template(prompt, add_generation_prompt=True)` and
  `apply_chat_template(prompt + chosen)` (`prompt + rejected`), i.e. the rendered template text
  tokenized with `add_special_tokens=False`; no EOS string is appended (the template ends turns).
- The prompt ends where the tokenized prompt and both prompt+completion sequences stop agreeing
  (`common_prefix_length`); the completion ids are the rest of each prompt+completion sequence.

We tokenize the same texts with `return_offsets_mapping=True` (a fast tokenizer is required), so
every completion token knows which characters of the completion text it covers. A zero-width
token (one a post-processor adds, offsets (0, 0)) is placed where the previous token ended (the
first completion token: at the start of the completion).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from focalpo.localize import common_prefix_length
from focalpo.pairs import PreferencePair
from focalpo.weights.schemes import CharWeights

BATCH = 256  # pairs per tokenizer call: the fast tokenizer encodes a batch in parallel


@dataclass(frozen=True)
class TokenizedPair:
    """TRL's ids for one pair, and where each completion token lies.

    `*_offsets`: the completion tokens' (start, end) in the tokenized text; `*_origin`: where the
    completion text starts in it; `*_end`: the completion text's length (its EOS or end-of-turn
    tokens start there), in completion-text coordinates.
    """

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    chosen_offsets: list[tuple[int, int]]
    rejected_offsets: list[tuple[int, int]]
    chosen_origin: int
    rejected_origin: int
    chosen_end: int
    rejected_end: int


# --------------------------------------------------------------------------------------------------
# the texts TRL tokenizes, and where the completion text lies in them


@dataclass(frozen=True)
class _Rendered:
    prompt: str  # text tokenized for prompt_ids
    full: str  # prompt + completion text as tokenized
    origin: int  # position in `full` of completion-text character 0
    end: int  # position in `full` where the completion text ends
    special: bool  # add_special_tokens


def _render_plain(pair: PreferencePair, completion: str, eos: str) -> _Rendered:
    text = completion if completion.endswith(eos) else completion + eos
    origin = len(pair.prompt)
    return _Rendered(pair.prompt, pair.prompt + text, origin, origin + len(completion), True)


def _render_chat(pair: PreferencePair, message: list, tokenizer, where: str) -> _Rendered:
    prompt = tokenizer.apply_chat_template(pair.prompt, tokenize=False, add_generation_prompt=True, tools=None)
    full = tokenizer.apply_chat_template(pair.prompt + message, tokenize=False, tools=None)
    content = message[0]["content"]
    search_from = common_prefix_length(prompt, full)
    start = full.find(content, search_from)
    if start >= 0:
        return _Rendered(prompt, full, start, start + len(content), False)
    stripped = content.strip()  # templates that strip the assistant content
    start = full.find(stripped, search_from) if stripped else -1
    if start < 0:
        raise ValueError(f"{where}: the chat template does not render the assistant content verbatim; spans cannot be mapped")
    lead = len(content) - len(content.lstrip())
    return _Rendered(prompt, full, start - lead, start + len(stripped), False)


def _where(pair: PreferencePair, index: int) -> str:
    source = pair.meta.get("source")
    return f"pair {index}" + (f" ({source})" if source else "")


def _render(pair: PreferencePair, index: int, tokenizer) -> tuple[_Rendered, _Rendered]:
    where = _where(pair, index)
    if pair.is_conversational:
        return _render_chat(pair, pair.chosen, tokenizer, where), _render_chat(pair, pair.rejected, tokenizer, where)
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no eos_token; TRL appends it to every plain-text completion")
    return _render_plain(pair, pair.chosen, tokenizer.eos_token), _render_plain(pair, pair.rejected, tokenizer.eos_token)


# --------------------------------------------------------------------------------------------------
# tokenisation


def _encode(tokenizer, texts: list[str], special: list[bool], offsets: bool) -> list[tuple[list[int], list]]:
    """Encode texts in two batches (with and without special tokens), results in input order."""
    out: list = [None] * len(texts)
    for flag in (True, False):
        idx = [i for i, s in enumerate(special) if s is flag]
        if not idx:
            continue
        enc = tokenizer([texts[i] for i in idx], add_special_tokens=flag, return_offsets_mapping=offsets)
        for k, i in enumerate(idx):
            out[i] = (enc["input_ids"][k], enc["offset_mapping"][k] if offsets else None)
    return out


def tokenize_pairs(pairs: Sequence[PreferencePair], tokenizer) -> list[TokenizedPair]:
    """TRL 1.16's prompt/chosen/rejected ids for each pair, with completion-token offsets."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer; token weights need its offset mapping")
    out: list[TokenizedPair] = []
    for lo in range(0, len(pairs), BATCH):
        out += _tokenize_batch(pairs[lo : lo + BATCH], lo, tokenizer)
    return out


def _tokenize_batch(pairs: Sequence[PreferencePair], first_index: int, tokenizer) -> list[TokenizedPair]:
    rendered = [_render(p, first_index + i, tokenizer) for i, p in enumerate(pairs)]
    prompts = _encode(tokenizer, [c.prompt for c, _ in rendered], [c.special for c, _ in rendered], offsets=False)
    fulls = _encode(
        tokenizer,
        [r.full for pair in rendered for r in pair],
        [r.special for pair in rendered for r in pair],
        offsets=True,
    )
    out = []
    for k, (c, r) in enumerate(rendered):
        p_ids = prompts[k][0]
        (c_ids, c_off), (r_ids, r_off) = fulls[2 * k], fulls[2 * k + 1]
        n = min(common_prefix_length(p_ids, c_ids), common_prefix_length(p_ids, r_ids))
        out.append(
            TokenizedPair(
                prompt_ids=p_ids[:n],
                chosen_ids=c_ids[n:],
                rejected_ids=r_ids[n:],
                chosen_offsets=c_off[n:],
                rejected_offsets=r_off[n:],
                chosen_origin=c.origin,
                rejected_origin=r.origin,
                chosen_end=c.end - c.origin,
                rejected_end=r.end - r.origin,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# character weights -> token weights


def token_weights(
    offsets: Sequence[tuple[int, int]], weights: CharWeights, end: int, origin: int = 0
) -> list[float]:
    """Per-token weights: focal weight if the token overlaps a focal span, else background, `end` past the text.

    `offsets` are positions in a text where the completion starts at `origin`; `weights` and `end`
    are in completion coordinates. A token [s, e) overlaps a span [a, b) when s < b and a < e (a
    zero-width token at p: a <= p < b); with `weights.focal_by == "start"` a span claims the
    tokens with a <= s < b instead. A token starting at or after `end` gets `weights.end`;
    other tokens take the background step holding their first character (tokens reaching back
    into the prompt count from character 0). Offsets are non-decreasing in practice, so each
    region is a run of tokens found by bisection and filled by slice assignment (no per-token
    Python work beyond reading the offsets); other offsets take a per-token loop, same rule.
    """
    starts = [s - origin for s, _ in offsets]
    reach = [(e if e > s else s + 1) - origin for s, e in offsets]  # a zero-width token at p reaches p + 1
    _place_zero_width(offsets, starts, reach)
    if starts != sorted(starts) or reach != sorted(reach):
        return [_token_weight(s, r, weights, end) for s, r in zip(starts, reach)]
    steps = weights.background
    out = [steps[0][1]] * len(starts)
    for k in range(1, len(steps)):
        lo = bisect_left(starts, steps[k][0])
        out[lo:] = [steps[k][1]] * (len(out) - lo)
    lo = bisect_left(starts, end)
    out[lo:] = [weights.end] * (len(out) - lo)
    by_start = weights.focal_by == "start"
    for a, b in weights.focal:
        lo, hi = bisect_left(starts, a) if by_start else bisect_right(reach, a), bisect_left(starts, b)
        out[lo:hi] = [weights.focal_weight] * max(hi - lo, 0)
    return out


def _place_zero_width(offsets: Sequence[tuple[int, int]], starts: list[int], reach: list[int]) -> None:
    """Move zero-width tokens (post-processor specials at (0, 0)) to where the previous token ended."""
    zero = [i for i, (s, e) in enumerate(offsets) if s == e]
    for i in zero:
        prev_end = 0 if i == 0 else (starts[i - 1] if offsets[i - 1][0] == offsets[i - 1][1] else reach[i - 1])
        starts[i], reach[i] = prev_end, prev_end + 1


def _token_weight(s: int, reach: int, weights: CharWeights, end: int) -> float:
    claims = (lambda a, b: a <= s < b) if weights.focal_by == "start" else (lambda a, b: s < b and a < reach)
    if any(claims(a, b) for a, b in weights.focal):
        return weights.focal_weight
    if s >= end:
        return weights.end
    return [w for start, w in weights.background if start <= s or start == 0][-1]
