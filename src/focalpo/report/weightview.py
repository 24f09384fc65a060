"""Token weights for the pair viewer: every completion token's weight under every scheme, as training computes
them, and one line per scheme saying what it does and which schemes weigh these pairs identically.

    tokens = token_views(pairs, load_tokenizer("models/sft"), ["dpo", "rpo", "focused"], {"focused": {"w_focused": 3}})
    scheme_lines(tokens, options, len(pairs))   # ["`dpo`: DPO: w ≡ 1 ...", ..., "Identical token weights ...: `dpo` = `rpo`; ..."]

Weights come from `focalpo.weights` (TRL tokenisation with offsets, the scheme's character weights, the token
rule), pair by pair with the pair's index in the file for the random schemes (diff-aug, hybrid), without
truncation. A scheme that needs a field a pair lacks gives None for that pair instead of failing the page.
Identity is computed by comparing the weight arrays, never assumed: dpo and rpo weigh alike and differ by a
loss term (α·NLL on the chosen), which the line says. transformers loads only in `load_tokenizer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from focalpo.pairs import PreferencePair
from focalpo.report import diffview


@dataclass
class Tokens:
    """Per pair and side: `diffview.token_pieces`; per scheme: token weights (None: the pair lacks a field)."""

    pieces: list[dict[str, list]]
    weights: dict[str, list[dict[str, list[float]] | None]]
    nll: dict[str, bool]


def load_tokenizer(name: str):
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ValueError(f"tokenizer {name!r}: cannot load it ({e})") from None


def token_views(pairs: list[PreferencePair], tokenizer, schemes: list[str], scheme_options: dict,
                seed: int = 0) -> Tokens:
    """Token pieces and weights of every pair under every scheme, as `focalpo train` computes them."""
    from focalpo.weights import token_weights, tokenize_pairs
    from focalpo.weights.build import pair_rng
    from focalpo.weights.schemes import resolve_options

    tokenized = tokenize_pairs(pairs, tokenizer)
    pieces = []
    for pair, t in zip(pairs, tokenized):
        pieces.append({side: diffview.token_pieces(getattr(t, f"{side}_offsets"), getattr(t, f"{side}_origin"),
                                                   getattr(t, f"{side}_end"),
                                                   tokenizer.convert_ids_to_tokens(getattr(t, f"{side}_ids")))
                       for side in ("chosen", "rejected")})
    weights: dict[str, list] = {}
    nll: dict[str, bool] = {}
    for name in schemes:
        scheme, options, needs, nll[name] = resolve_options(name, dict(scheme_options.get(name) or {}))
        weights[name] = []
        for i, (pair, t) in enumerate(zip(pairs, tokenized)):
            if any(getattr(pair, n) is None for n in needs):
                weights[name].append(None)
                continue
            w = scheme.weigh(pair, pair_rng(seed, i), **options)
            weights[name].append({
                "chosen": token_weights(t.chosen_offsets, w.chosen, t.chosen_end, t.chosen_origin),
                "rejected": token_weights(t.rejected_offsets, w.rejected, t.rejected_end, t.rejected_origin)})
    return Tokens(pieces, weights, nll)


def identical_schemes(tokens: Tokens) -> list[list[str]]:
    """Groups (2+) of schemes whose token weights are equal on every pair (both weigh the same pairs)."""
    groups: list[list[str]] = []
    for name, ws in tokens.weights.items():
        if all(w is None for w in ws):
            continue
        for g in groups:
            if tokens.weights[g[0]] == ws:
                g.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def scheme_lines(tokens: Tokens, scheme_options: dict, n_pairs: int) -> list[str]:
    """One line per scheme (its function's docstring, options, NLL, pairs it cannot weigh) and one per group
    of schemes with identical weights."""
    from focalpo.weights import SCHEMES

    lines = []
    for name, ws in tokens.weights.items():
        doc = (SCHEMES[name].fn.__doc__ or "").strip().splitlines()[0]
        options = scheme_options.get(name) or {}
        missing = sum(w is None for w in ws)
        lines.append(f"`{name}`: {doc}" + (f" Options: {json.dumps(options)}." if options else "")
                     + (" Adds α·NLL on the chosen to the loss." if tokens.nll[name] else "")
                     + (f" Cannot weigh {missing} of {n_pairs} pairs (not localised for it): '-'." if missing else ""))
    for group in identical_schemes(tokens):
        with_nll = [s for s in group if tokens.nll[s]]
        why = (f"; they differ in the loss, not the weights: {', '.join(f'`{s}`' for s in with_nll)} add(s) α·NLL "
               "on the chosen" if with_nll and len(with_nll) < len(group) else "; they train alike on these pairs")
        lines.append(f"Identical token weights on every pair they weigh: {' = '.join(f'`{s}`' for s in group)}{why}.")
    return lines
