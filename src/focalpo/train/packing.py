"""Prefix-shared, padding-free pair batches: the prompt and the common code prefix computed once.

    collate = PackedPairCollator(pad_token_id=tok.pad_token_id, max_length=2048)
    batch = collate(examples)          # the same examples as PreferenceCollator takes

A code preference pair is mostly shared text: the prompt and, for Focused-DPO pairs by construction,
a long common code prefix before the first differing line. Each pair becomes one packed unit

    [prompt | common token prefix | chosen rest | rejected rest]

with position ids that restart the rejected rest where the chosen rest started, and an attention
mask in which the rejected rest sees the prompt and the common prefix but not the chosen rest. The
common prefix is the longest common prefix of the two completions' *token ids* (where BPE splits the
two texts differently just before they diverge, only the identical tokens are shared). The logits at
the last shared position score the first token of both rests. With `share_prefix=False` a pair is two
units, prompt + chosen and prompt + rejected.

With `pack` (padding-free), units are packed several to a row (first fit, longest first, up to
`max_row_tokens`, default the longest unit of the batch) with a block-diagonal mask and per-unit
position ids; rows are padded only to the longest row (padding attends to itself alone).

Keys of the batch (R rows of L tokens, N scored tokens, B pairs):

    input_ids      (R, L) int64           position_ids (R, L) int64
    attention_mask (R, 1, L, L) bool      True where a query token may attend a key token
    score_row, score_src, score_tgt (N,)  token score_tgt is scored by the hidden state at [score_row, score_src]
    score_pair     (N,) int64             the pair of the batch it belongs to
    score_pos      (N,) int64             its index in the completion(s) it belongs to
    chosen_weights, rejected_weights (N,) w_t of the token in the chosen / rejected sequence (0 if not in it)
    chosen_mask, rejected_mask (N,)       1 if the token is a completion token of that sequence
    focus_chosen, focus_rejected (N,)     localised tokens of validation pairs (with REF_FOCUS_KEYS)
    ref_chosen_logps, ... (B,)            as PreferenceCollator

A token of the common prefix is in both sequences: scored once, it counts in both sums with each
side's weight. Every completion token with a token before it is scored, as in the padded layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from focalpo.localize import common_prefix_length
from focalpo.train.collate import FOCUS_KEYS, REF_FOCUS_KEYS, REF_KEYS, check_example, pair_columns

PACKED_KEY = "score_src"  # present in a packed batch only


@dataclass
class _Unit:
    """One packed unit: its tokens, each token's branch (0 shared, 1 chosen, 2 rejected), positions,
    and the scored tokens as (index in the unit of the scoring hidden state, index of the token, values)."""

    ids: list[int]
    branch: list[int]
    positions: list[int]
    scored: list[tuple[int, int, int, int, tuple[float, ...]]]  # (src, token, pair, j, (w_c, w_r, m_c, m_r, f_c, f_r))


def _units(ex: dict, pair: int, share: bool, max_length: int | None, focus: bool) -> list[_Unit]:
    prompt = list(ex["prompt_input_ids"])
    sides = {}
    for side in ("chosen", "rejected"):
        ids, w = list(ex[f"{side}_input_ids"]), [float(x) for x in ex[f"{side}_weights"]]
        f = [float(x) for x in ex[f"{side}_focus"]] if focus else [0.0] * len(ids)
        if max_length is not None:  # keep_start, as PreferenceCollator: prompt + completion cut at max_length
            keep = max(0, max_length - len(prompt))
            ids, w, f = ids[:keep], w[:keep], f[:keep]
        sides[side] = (ids, w, f)
    if max_length is not None:
        prompt = prompt[:max_length]
    P = len(prompt)

    def values(side: str, j: int, both: bool) -> tuple[float, ...]:
        _, w, f = sides[side]
        if both:  # a shared token: in both sequences, at the same index j
            (_, wc, fc), (_, wr, fr) = sides["chosen"], sides["rejected"]
            return (wc[j], wr[j], 1.0, 1.0, fc[j], fr[j])
        return (w[j], 0.0, 1.0, 0.0, f[j], 0.0) if side == "chosen" else (0.0, w[j], 0.0, 1.0, 0.0, f[j])

    if not share:
        units = []
        for side in ("chosen", "rejected"):
            ids = sides[side][0]
            scored = [(P + j - 1, P + j, pair, j, values(side, j, False)) for j in range(len(ids)) if P + j >= 1]
            units.append(_Unit(prompt + ids, [0] * (P + len(ids)), list(range(P + len(ids))), scored))
        return units
    (c, _, _), (r, _, _) = sides["chosen"], sides["rejected"]
    K = common_prefix_length(c, r)  # of token ids: only identical tokens are shared
    shared, rc, rr = prompt + c[:K], c[K:], r[K:]
    S = len(shared)
    scored = [(P + j - 1, P + j, pair, j, values("chosen", j, True)) for j in range(K) if P + j >= 1]
    scored += [(S + j - 1, S + j, pair, K + j, values("chosen", K + j, False)) for j in range(len(rc)) if S + j >= 1]
    start = S + len(rc)  # the rejected rest's first token is scored by the last shared position
    scored += [((start + j - 1) if j else S - 1, start + j, pair, K + j, values("rejected", K + j, False))
               for j in range(len(rr)) if S + j >= 1]
    ids = shared + rc + rr
    positions = list(range(S + len(rc))) + list(range(S, S + len(rr)))
    return [_Unit(ids, [0] * S + [1] * len(rc) + [2] * len(rr), positions, scored)]


def _rows(lengths: list[int], budget: int) -> list[list[int]]:
    """Units (by index) packed into rows of at most `budget` tokens: first fit, longest first."""
    rows: list[list[int]] = []
    room: list[int] = []
    for u in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, free in enumerate(room):
            if lengths[u] <= free:
                rows[r].append(u)
                room[r] -= lengths[u]
                break
        else:
            rows.append([u])
            room.append(budget - lengths[u])
    return rows


@dataclass
class PackedPairCollator:
    """Examples (as PreferenceCollator takes them) -> the packed batch of the module docstring."""

    pad_token_id: int
    max_length: int | None = None
    share_prefix: bool = True
    pack: bool = True
    max_row_tokens: int | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        for i, ex in enumerate(examples):
            check_example(ex, i)
        focus = all(k in ex for ex in examples for k in FOCUS_KEYS + REF_FOCUS_KEYS)
        units = [u for b, ex in enumerate(examples) for u in _units(ex, b, self.share_prefix, self.max_length, focus)]
        lengths = [len(u.ids) for u in units]
        if self.pack:
            rows = _rows(lengths, max(max(lengths), self.max_row_tokens or 0))
        else:
            rows = [[u] for u in range(len(units))]
        L = max(sum(lengths[u] for u in row) for row in rows)
        R = len(rows)
        input_ids = torch.full((R, L), self.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((R, L), dtype=torch.long)
        mask = torch.zeros((R, 1, L, L), dtype=torch.bool)
        causal = torch.ones(L, L, dtype=torch.bool).tril_()
        score: list[tuple] = []
        for r, row in enumerate(rows):
            at = 0
            for u in row:
                unit, n = units[u], lengths[u]
                input_ids[r, at : at + n] = torch.tensor(unit.ids)
                position_ids[r, at : at + n] = torch.tensor(unit.positions)
                branch = torch.tensor(unit.branch)
                # causal inside the unit, and the rejected rest (2) does not see the chosen rest (1)
                block = causal[:n, :n] & ~((branch[:, None] == 2) & (branch[None, :] == 1))
                mask[r, 0, at : at + n, at : at + n] = block
                score += [(r, at + src, unit.ids[tok], pair, j, vals) for src, tok, pair, j, vals in unit.scored]
                at += n
            idle = torch.arange(at, L)
            mask[r, 0, idle, idle] = True  # padding attends to itself alone: no fully masked row
            position_ids[r, at:] = torch.arange(L - at)
        vals = torch.tensor([s[5] for s in score], dtype=torch.float32).reshape(len(score), 6)
        batch = {
            "input_ids": input_ids, "position_ids": position_ids, "attention_mask": mask,
            "score_row": torch.tensor([s[0] for s in score], dtype=torch.long),
            PACKED_KEY: torch.tensor([s[1] for s in score], dtype=torch.long),
            "score_tgt": torch.tensor([s[2] for s in score], dtype=torch.long),
            "score_pair": torch.tensor([s[3] for s in score], dtype=torch.long),
            "score_pos": torch.tensor([s[4] for s in score], dtype=torch.long),
            "chosen_weights": vals[:, 0], "rejected_weights": vals[:, 1],
            "chosen_mask": vals[:, 2], "rejected_mask": vals[:, 3],
            "num_pairs": torch.tensor(len(examples)),
        }
        batch.update(pair_columns(examples, REF_KEYS))
        if focus:
            batch["focus_chosen"], batch["focus_rejected"] = vals[:, 4], vals[:, 5]
            batch.update(pair_columns(examples, REF_FOCUS_KEYS))
        return batch


def shared_token_fraction(examples: list[dict], max_length: int | None = None) -> float:
    """Share of the padded layout's tokens (prompt + chosen, prompt + rejected) in the part the two sequences
    have in common (the prompt and the common token prefix). Prefix sharing computes that part once:
    it saves half of this share of the tokens (padding aside)."""
    full = shared = 0
    for ex in examples:
        (unit,) = _units(ex, 0, True, max_length, False)
        n = unit.branch.count(0)
        full += len(unit.ids) + n
        shared += 2 * n
    return shared / full if full else 0.0
