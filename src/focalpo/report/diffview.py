"""One completion as HTML: a character-level diff inside changed lines, the localised regions, and (with a
tokenizer) every token coloured by its weight, the value printed after the token.

    dc, dr = char_diff("x = 2\\n", "x = 5\\n")      # ((4, 5),), ((4, 5),): only the differing characters
    html = code_html(text, {"dc": dc, "sp": pair.chosen_spans}, pieces, weights, shown=0)

- `char_diff`: lines are matched first (difflib over lines, trailing whitespace ignored); inside each block
  of replaced lines the characters are matched (difflib over characters) and only the characters that
  differ are marked; inserted or deleted lines are marked whole. So `2` vs `5` is one marked character.
- `token_pieces`: the tokens of a completion (offsets from `focalpo.weights.tokenize_pairs`) as character
  ranges of its text; tokens past the text or zero-width (EOS, end of turn) are shown as the token.
- `code_html`: nested markup, token outermost: `<span class="t" data-i=.. data-w="1 1 0">` (its weight under
  each shown scheme, "-" when the scheme cannot weigh the pair) holding runs of characters whose classes
  are the marks covering them (dc: differs, sp: localised span, mid: prefix/suffix middle) and a
  `<sub class="w">` with the weight under the scheme shown first (placed before the token's first newline,
  so it stays on the token's line). Every text is escaped.
"""

from __future__ import annotations

import html
from difflib import SequenceMatcher
from typing import Sequence

Spans = tuple[tuple[int, int], ...]
MARKS = ("dc", "sp", "mid")  # class order in the markup


def _line_starts(text: str) -> tuple[list[str], list[int]]:
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return lines, starts


def _merge(spans: list[tuple[int, int]]) -> Spans:
    out: list[tuple[int, int]] = []
    for s, e in sorted(x for x in spans if x[1] > x[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def char_diff(chosen: str, rejected: str) -> tuple[Spans, Spans]:
    """(chosen spans, rejected spans) of the characters that differ (module doc)."""
    la, sa = _line_starts(chosen)
    lb, sb = _line_starts(rejected)
    lines = SequenceMatcher(None, [x.rstrip() for x in la], [x.rstrip() for x in lb], autojunk=False)
    out_a: list[tuple[int, int]] = []
    out_b: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in lines.get_opcodes():
        if tag == "equal":
            continue
        a0, a1, b0, b1 = sa[i1], sa[i2], sb[j1], sb[j2]
        if tag != "replace":  # whole lines inserted or deleted
            out_a.append((a0, a1))
            out_b.append((b0, b1))
            continue
        chars = SequenceMatcher(None, chosen[a0:a1], rejected[b0:b1], autojunk=False)
        for op, x1, x2, y1, y2 in chars.get_opcodes():
            if op != "equal":
                out_a.append((a0 + x1, a0 + x2))
                out_b.append((b0 + y1, b0 + y2))
    return _merge(out_a), _merge(out_b)


def token_pieces(offsets: Sequence[tuple[int, int]], origin: int, end: int, tokens: list[str]) -> list[tuple]:
    """("tok", start, end) per token (its characters of the completion, [0, end)), ("special", token) per
    token past the text or zero-width, ("gap", start, end) for characters no token covers."""
    out: list[tuple] = []
    pos = 0
    for (s, e), token in zip(offsets, tokens):
        if s - origin >= end or e == s:
            out.append(("special", token))
            continue
        a, b = max(s - origin, pos), min(e - origin, end)
        if a > pos:
            out.append(("gap", pos, a))
        out.append(("tok", a, max(a, b)))
        pos = max(pos, b)
    return out + ([("gap", pos, end)] if pos < end else [])


def fmt_weight(w: float | None) -> str:
    return "-" if w is None else f"{w:g}"


def weight_class(w: float | None) -> str:
    """A colour bucket for a weight: none, 0, below 1, 1, above 1 (the script uses the same buckets)."""
    return "wn" if w is None else "w0" if w <= 0 else "wl" if w < 1 else "w1" if w == 1 else "wh"


def _flags(text_len: int, marks: dict[str, Sequence[tuple[int, int]]]) -> dict[str, bytearray]:
    flags = {}
    for name in MARKS:
        spans = marks.get(name) or ()
        if spans:
            f = bytearray(text_len)
            for s, e in spans:
                f[max(s, 0):min(e, text_len)] = b"\x01" * (min(e, text_len) - max(s, 0))
            flags[name] = f
    return flags


def _runs(text: str, start: int, end: int, flags: dict[str, bytearray]) -> str:
    """text[start:end] escaped, cut into runs of equal marks, each marked run in <span class="...">."""
    out, i = [], start
    while i < end:
        cls = [n for n in MARKS if n in flags and flags[n][i]]
        j = i + 1
        while j < end and [n for n in MARKS if n in flags and flags[n][j]] == cls:
            j += 1
        piece = html.escape(text[i:j], quote=False)
        out.append(f'<span class="{" ".join(cls)}">{piece}</span>' if cls else piece)
        i = j
    return "".join(out)


def code_html(text: str, marks: dict[str, Sequence[tuple[int, int]]], pieces: list[tuple] | None = None,
              weights: list[list[float | None]] | None = None, shown: int = 0) -> str:
    """The inside of a <pre> for one completion (module doc). `pieces`: `token_pieces` (None: no tokens);
    `weights[k][t]`: weight of token t under scheme k (None: not weighed); `shown`: the scheme printed."""
    flags = _flags(len(text), marks)
    if pieces is None:
        return _runs(text, 0, len(text), flags)
    out, t = [], 0
    for kind, *a in pieces:
        if kind == "gap":
            out.append(_runs(text, a[0], a[1], flags))
            continue
        ws = [w[t] if w is not None and t < len(w) else None for w in (weights or [])]
        value = ws[shown] if 0 <= shown < len(ws) else None
        sub = f'<sub class="w">{fmt_weight(value)}</sub>' if ws else ""
        attrs = f' data-w="{" ".join(map(fmt_weight, ws))}"' if ws else ""
        special = " special" if kind == "special" else ""
        if kind == "special":
            inner = html.escape(a[0], quote=False) + sub
        else:
            s, e = a
            nl = text.find("\n", s, e)
            cut = e if nl < 0 else nl
            inner = _runs(text, s, cut, flags) + sub + _runs(text, cut, e, flags)
        out.append(f'<span class="t{special} {weight_class(value) if ws else ""}" data-i="{t}"{attrs}>{inner}</span>')
        t += 1
    return "".join(out)
