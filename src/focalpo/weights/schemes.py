"""Weight schemes: pure functions from a localised pair to character-level weights of each completion.

    >>> from focalpo.pairs import PreferencePair
    >>> pair = PreferencePair("p", "a\\nB\\n", "a\\nb\\n", chosen_spans=((2, 4),), rejected_spans=((2, 4),))
    >>> SCHEMES["target"].weigh(pair, random.Random(0)).rejected
    CharWeights(focal=((2, 4),), focal_weight=1.0, background=((0, 0.0),), end=0.0)

Every method is a weight scheme over one loss (DESIGN.md): the sequence score is
`β·Σ_t w_t·(log π_θ(y_t) − log π_ref(y_t))`. A scheme says, per pair, which characters of each
completion weigh how much (`CharWeights`); `focalpo.weights.tokens` turns that into per-token
weights through the tokenizer's offset mapping. Registry `SCHEMES` (CLI names):

| scheme      | chosen                         | rejected                                  | NLL |
|-------------|--------------------------------|-------------------------------------------|-----|
| dpo         | 1                              | 1                                         | no  |
| rpo         | 1                              | 1                                         | yes |
| target      | 1                              | 1 on D-, else 0                           | no  |
| target-rpo  | 1                              | 1 on D-, else 0                           | yes |
| focused     | mid w, prefix/suffix 1         | mid w, prefix 1, suffix 0                 | no  |
| symmetric   | 1 on D+, else 0                | 1 on D-, else 0                           | no  |
| diff-aug    | 1                              | 1 on D- widened by n lines, else 0        | no  |
| hybrid      | a `fraction` of pairs as dpo, the others as `base` (default target)        | base|

Token rule: a token inside (overlapping) a focal span gets the focal weight; any other token gets
the background weight at its first character; tokens past the end of the completion text (the
appended EOS, a chat template's end-of-turn) get `end`, the weight of the suffix. Whole-line D+/D-
spans (`focalpo localize --method lcs`, the default `lines="whole"`, not refined) claim the tokens
that *start* in them instead (`CharWeights.focal_by="start"`): that is how the official Target-DPO
code's line -> token ranges fall (prefix encodes), so a BPE token joining the previous line's
newline to a changed line's indentation stays the previous line's.
Random choices (diff-aug's n, hybrid's pick) come from a per-pair `random.Random` seeded with
(seed, pair index), so a dataset's weights are deterministic.
"""

from __future__ import annotations

import inspect
import random
from bisect import bisect_right
from dataclasses import dataclass, replace
from typing import Any, Callable

from focalpo.localize import line_bounds
from focalpo.pairs import PreferencePair, Spans


@dataclass(frozen=True)
class CharWeights:
    """Weights over one completion text: focal spans win; elsewhere a step function; `end` past the text.

    `background` is a sorted tuple of (start, weight) steps: a weight holds from its start up to
    the next step (the first step starts at 0).
    """

    focal: Spans = ()
    focal_weight: float = 1.0
    background: tuple[tuple[int, float], ...] = ((0, 1.0),)
    end: float = 1.0
    focal_by: str = "overlap"  # which tokens a focal span claims: those overlapping it, or those starting in it


@dataclass(frozen=True)
class PairWeights:
    chosen: CharWeights
    rejected: CharWeights
    nll: bool = False  # add α·NLL on the chosen for this pair (RPO variants)


ONES = CharWeights()


def only_on(spans: Spans, weight: float = 1.0, focal_by: str = "overlap") -> CharWeights:
    """`weight` on `spans`, 0 elsewhere (EOS included)."""
    return CharWeights(focal=tuple(spans), focal_weight=weight, background=((0, 0.0),), end=0.0, focal_by=focal_by)


def line_spans_claim(pair: PreferencePair) -> str:
    """`focal_by` for a pair's D+/D- spans: "start" for whole changed lines (module docstring)."""
    options = pair.meta.get("localize") if isinstance(pair.meta, dict) else None
    whole = isinstance(options, dict) and options.get("method") == "lcs" and options.get("lines") == "whole"
    return "start" if whole and not options.get("refine") else "overlap"


def _need(pair: PreferencePair, name: str) -> Any:
    value = getattr(pair, name)
    if value is None:  # checked by the builder with the pair's index; kept here for direct callers
        raise ValueError(f"field {name!r} is missing; localise the pairs first (focalpo localize)")
    return value


# --------------------------------------------------------------------------------------------------
# schemes: (pair, rng, **options) -> PairWeights


def dpo_weights(pair: PreferencePair, rng: random.Random) -> PairWeights:
    """DPO: w ≡ 1 (must equal TRL's sigmoid DPO)."""
    return PairWeights(ONES, ONES)


def rpo_weights(pair: PreferencePair, rng: random.Random) -> PairWeights:
    """RPO: DPO weights; the trainer adds α·NLL on the chosen."""
    return PairWeights(ONES, ONES, nll=True)


def target_weights(pair: PreferencePair, rng: random.Random) -> PairWeights:
    """Target-DPO (arXiv 2503.02783): chosen fully rewarded, rejected scored only on D-."""
    return PairWeights(ONES, only_on(_need(pair, "rejected_spans"), focal_by=line_spans_claim(pair)))


def target_rpo_weights(pair: PreferencePair, rng: random.Random) -> PairWeights:
    """Target-RPO: Target-DPO weights plus α·NLL on the chosen."""
    return replace(target_weights(pair, rng), nll=True)


def focused_weights(
    pair: PreferencePair,
    rng: random.Random,
    *,
    w_focused: float = 2.0,
    weight_rejected_mid: bool = True,
    drop_rejected_suffix: bool = True,
) -> PairWeights:
    """Focused-DPO (arXiv 2502.11475): the differing middle weighs `w_focused`, the rejected suffix 0.

    L = −log σ(β[w·(ρ(mid⁺) − ρ(mid⁻)) + ρ(suffix⁺)]); the common prefix has weight 1 on both sides
    and cancels when it tokenizes alike. `weight_rejected_mid=False` keeps the rejected middle at
    1; `drop_rejected_suffix=False` keeps the rejected suffix (and EOS) at 1. Neither is settled
    by the paper; the defaults follow the loss as written above.
    """
    p = _need(pair, "prefix_len")
    c_mid = (p, _need(pair, "chosen_suffix_start"))
    r_mid = (p, _need(pair, "rejected_suffix_start"))
    suffix = 0.0 if drop_rejected_suffix else 1.0
    chosen = CharWeights(focal=_nonempty(c_mid), focal_weight=w_focused)
    rejected = CharWeights(
        focal=_nonempty(r_mid),
        focal_weight=w_focused if weight_rejected_mid else 1.0,
        background=((0, 1.0), (p, suffix)),
        end=suffix,
    )
    return PairWeights(chosen, rejected)


def symmetric_weights(pair: PreferencePair, rng: random.Random) -> PairWeights:
    """Target-DPO ablation: only D+ on the chosen and only D- on the rejected."""
    by = line_spans_claim(pair)
    return PairWeights(only_on(_need(pair, "chosen_spans"), focal_by=by), only_on(_need(pair, "rejected_spans"), focal_by=by))


def diff_aug_weights(pair: PreferencePair, rng: random.Random, *, context_lines: int | None = None) -> PairWeights:
    """Target-DPO ablation: D- widened by n lines on each side; n = `context_lines`, default 1 or 2 at random."""
    n = rng.randint(1, 2) if context_lines is None else int(context_lines)
    widened = widen_by_lines(pair.rejected_text, _need(pair, "rejected_spans"), n)
    return PairWeights(ONES, only_on(widened, focal_by=line_spans_claim(pair)))


def hybrid_weights(
    pair: PreferencePair, rng: random.Random, *, fraction: float = 0.5, base: str = "target", **base_options: Any
) -> PairWeights:
    """Target-DPO ablation: a `fraction` of the pairs scored as plain DPO, the rest by `base`.

    `nll` is the base's for every pair (one α·NLL term per run: the trainer needs one value).
    """
    if rng.random() < fraction:
        return replace(dpo_weights(pair, rng), nll=SCHEMES[base].nll)
    return SCHEMES[base].fn(pair, rng, **base_options)


def _nonempty(span: tuple[int, int]) -> Spans:
    return (span,) if span[1] > span[0] else ()


def widen_by_lines(text: str, spans: Spans, n: int) -> Spans:
    """Each span grown to cover `n` more lines before and after it (clamped); overlaps merged.

    The widened span starts at the first non-whitespace character of its first line (or at the
    original start, if earlier) and ends at the end of its last line, newline included.
    """
    bounds = line_bounds(text)
    starts = [s for s, _ in bounds]
    out: list[tuple[int, int]] = []
    for s, e in spans:
        first = max(_line_of(starts, s) - n, 0)
        last = min(_line_of(starts, max(e - 1, s)) + n, len(bounds) - 1)
        line_start, line_end = bounds[first]
        indent = len(text[line_start:line_end]) - len(text[line_start:line_end].lstrip())
        start, end = min(s, line_start + indent), max(e, bounds[last][1])
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def _line_of(starts: list[int], pos: int) -> int:
    return max(bisect_right(starts, pos) - 1, 0)


# --------------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class Scheme:
    """A named weight scheme: `fn(pair, rng, **options)`, the record fields it needs, whether it adds NLL."""

    name: str
    fn: Callable[..., PairWeights]
    needs: tuple[str, ...] = ()
    nll: bool = False

    def options(self) -> dict[str, Any]:
        """Keyword options and their defaults (from the function's signature)."""
        params = list(inspect.signature(self.fn).parameters.values())[2:]
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}

    def weigh(self, pair: PreferencePair, rng: random.Random, **options: Any) -> PairWeights:
        return self.fn(pair, rng, **options)


BOUNDARIES = ("prefix_len", "chosen_suffix_start", "rejected_suffix_start")

SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("dpo", dpo_weights),
        Scheme("rpo", rpo_weights, nll=True),
        Scheme("target", target_weights, needs=("rejected_spans",)),
        Scheme("target-rpo", target_rpo_weights, needs=("rejected_spans",), nll=True),
        Scheme("focused", focused_weights, needs=BOUNDARIES),
        Scheme("symmetric", symmetric_weights, needs=("chosen_spans", "rejected_spans")),
        Scheme("diff-aug", diff_aug_weights, needs=("rejected_spans",)),
        Scheme("hybrid", hybrid_weights),
    )
}


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown weight scheme {name!r} (known: {', '.join(SCHEMES)})")
    return SCHEMES[name]


_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "fraction": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "context_lines": (lambda v: v is None or v >= 0, ">= 0 or None"),
    "w_focused": (lambda v: v >= 0.0, ">= 0"),
}


def _coerce(scheme: str, name: str, value: Any, default: Any) -> Any:
    """`value` as the type of the option's default (CLI and YAML values arrive as strings)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                value = value.lower() in ("true", "1")
            if not isinstance(value, bool):
                raise ValueError
        elif isinstance(default, float):
            value = float(value)
        elif default is None:  # an int option whose default is "drawn at random"
            none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
            if isinstance(value, (bool, float)):
                raise ValueError
            value = None if none else int(value)
        elif isinstance(default, str):
            value = str(value)
    except (TypeError, ValueError):
        raise ValueError(f"weight scheme {scheme!r}: option {name!r} must be like {default!r}, got {value!r}") from None
    check = _RANGES.get(name)
    if check and not check[0](value):
        raise ValueError(f"weight scheme {scheme!r}: option {name!r} must be {check[1]}, got {value!r}")
    return value


def resolve_options(name: str, options: dict[str, Any]) -> tuple[Scheme, dict[str, Any], tuple[str, ...], bool]:
    """(scheme, options with defaults filled in and types checked, fields it needs, nll).

    Unknown options, values of the wrong type and out-of-range values are errors naming the
    scheme and option. `hybrid` also takes its base scheme's options, and needs what the base needs.
    """
    scheme = get_scheme(name)
    allowed = scheme.options()
    needs, nll = scheme.needs, scheme.nll
    if name == "hybrid":
        base = get_scheme(str(options.get("base", allowed["base"])))
        if base.name == "hybrid":
            raise ValueError("weight scheme 'hybrid': option 'base' cannot be 'hybrid'")
        allowed = {**allowed, **base.options()}
        needs, nll = base.needs, base.nll
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"weight scheme {name!r} has no option {unknown[0]!r} (options: {known})")
    resolved = {k: _coerce(name, k, options[k], allowed[k]) if k in options else allowed[k] for k in allowed}
    return scheme, resolved, needs, nll
