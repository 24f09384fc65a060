"""Localisation: where a chosen and a rejected program differ, as character spans into each.

    focalpo localize --in trl.jsonl --method lcs --out pairs.jsonl          # Target-DPO D+ / D-
    focalpo localize --in trl.jsonl --method prefix-suffix --out pairs.jsonl   # Focused-DPO middles
    focalpo localize --in org/dpo-data --split train --columns prompt=question --out pairs.parquet

    >>> lcs_regions("a = 1\\nb = 2\\n", "a = 1\\nb = 3\\n")
    Regions(chosen_spans=((6, 12),), rejected_spans=((6, 12),))

- `common_prefix_suffix(chosen, rejected, unit)`: Focused-DPO (arXiv 2502.11475): the common prefix
  and common suffix; the differing middles are the error-prone points. Prefix and suffix never
  overlap (their lengths sum to at most the shorter text). `unit="line"` keeps whole lines only.
- `lcs_regions(chosen, rejected)`: Target-DPO Algorithm 1 (arXiv 2503.02783): a longest common
  subsequence of lines; chosen lines outside it are D+, rejected lines outside it are D-.
- `refine_spans(...)`: narrows changed lines to the differing words (difflib over word tokens).
- `localize_pair` / `localize_file` / `run_localize(LocalizeConfig)`: records for `focalpo.pairs`,
  the engine of `focalpo localize`.

Over 400 lines on purpose: both papers' localisers share the line conventions below, and keeping
them beside each other is what keeps them consistent.

Conventions (chosen so that a span matches how byte-level BPE tokenizers cut code):

- A line is compared without its trailing whitespace and line ending, so CRLF vs LF or trailing
  spaces never count as a change; indentation does (it is Python syntax).
- One span per changed line, by default the whole line (`lines="whole"`): its indentation, its
  content and its newline, as the official Target-DPO code marks a changed line's token range
  (`scripts/diff_lib.py`: `get_precise_line_positions`, lines split with `keepends=True`); a
  changed blank line is marked too. `lines="content"` (focalpo's earlier convention) starts at
  the first non-whitespace character instead, since BPE merges indentation with the previous
  line's newline ("\\n   "), and never marks a whitespace-only line. Either way a last line
  without a newline ends at the end of the text.
- Code inside a markdown fence: when both completions hold a fenced block (`focalpo.extract`
  picks it), LCS runs on the code alone and spans are mapped back to the full completion, so
  prose around the code never counts as D+/D-. Prefix/suffix always use the full text (the
  prefix must be literally identical to cancel in the loss).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Callable

from focalpo.datasets_io import Source, data_source, iter_source_rows
from focalpo.pairs import FIELDS, PreferencePair, Spans, Text, completion_text, write_pairs

UNITS = ("line", "char")
LINE_SPANS = ("whole", "content")  # what of a changed line an lcs span covers (module docstring)


@dataclass(frozen=True)
class PrefixSuffix:
    """`text[:prefix_len]` is common to both; `chosen[chosen_suffix_start:] == rejected[rejected_suffix_start:]`."""

    prefix_len: int
    chosen_suffix_start: int
    rejected_suffix_start: int


@dataclass(frozen=True)
class Regions:
    """Character spans [start, end) into chosen (D+) and rejected (D-), sorted and disjoint."""

    chosen_spans: Spans
    rejected_spans: Spans


# --------------------------------------------------------------------------------------------------
# lines


def line_bounds(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, `end` past its newline; "a\\nb" -> [(0, 2), (2, 3)], "" -> []."""
    bounds, start = [], 0
    for line in text.splitlines(keepends=True):
        bounds.append((start, start + len(line)))
        start += len(line)
    return bounds


def line_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of line text[start:end]: first non-whitespace character to `end`; None if blank."""
    stripped = len(text[start:end]) - len(text[start:end].lstrip())
    return None if start + stripped >= end else (start + stripped, end)


def _line_key(text: str, bounds: tuple[int, int]) -> str:
    return text[bounds[0] : bounds[1]].rstrip()


# --------------------------------------------------------------------------------------------------
# common prefix / suffix (Focused-DPO)


def common_prefix_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common prefix of two sequences (strings, lists of lines or token ids).

    The usual case in tokenisation, `a` a prefix of `b`, is one C-level comparison."""
    if len(a) <= len(b) and a == b[: len(a)]:
        return len(a)
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _common_suffix(a: Sequence, b: Sequence, limit: int) -> int:
    n = 0
    while n < limit and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    return n


def common_prefix_suffix(chosen: str, rejected: str, unit: str = "line") -> PrefixSuffix:
    """Focused-DPO's common prefix and suffix; prefix + suffix never exceed the shorter text.

    The prefix is matched first and takes what it can; the suffix is matched on what is left.
    `unit="line"`: whole lines only (compared exactly, line ending included), so both boundaries
    fall at line starts. `unit="char"`: character level.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if unit == "char":
        p = common_prefix_length(chosen, rejected)
        s = _common_suffix(chosen, rejected, min(len(chosen), len(rejected)) - p)
        return PrefixSuffix(p, len(chosen) - s, len(rejected) - s)
    a, b = chosen.splitlines(keepends=True), rejected.splitlines(keepends=True)
    p = common_prefix_length(a, b)
    s = _common_suffix(a, b, min(len(a), len(b)) - p)
    prefix_len = sum(map(len, a[:p]))
    suffix_len = sum(map(len, a[len(a) - s :]))
    return PrefixSuffix(prefix_len, len(chosen) - suffix_len, len(rejected) - suffix_len)


# --------------------------------------------------------------------------------------------------
# LCS over lines (Target-DPO Algorithm 1)


def lcs_pairs(a: Sequence, b: Sequence) -> list[tuple[int, int]]:
    """Index pairs (i, j), increasing in both, of one longest common subsequence of `a` and `b`.

    Exact: the common prefix and suffix are matched first (some LCS always contains them), then
    the classic O(n·m) dynamic programme runs on the rest. Ties are broken deterministically
    (an equal last element is matched; otherwise the step that drops an element of `a` first).
    """
    p = common_prefix_length(a, b)
    s = _common_suffix(a, b, min(len(a), len(b)) - p)
    mid_a, mid_b = a[p : len(a) - s], b[p : len(b) - s]
    middle = [(p + i, p + j) for i, j in _lcs_dp(mid_a, mid_b)]
    head = [(i, i) for i in range(p)]
    tail = [(len(a) - s + k, len(b) - s + k) for k in range(s)]
    return head + middle + tail


def _lcs_dp(a: Sequence, b: Sequence) -> list[tuple[int, int]]:
    n, m = len(a), len(b)
    if not n or not m:
        return []
    table = [[0] * (m + 1) for _ in range(n + 1)]  # table[i][j] = LCS length of a[:i], b[:j]
    for i in range(1, n + 1):
        row, prev, x = table[i], table[i - 1], a[i - 1]
        for j in range(1, m + 1):
            row[j] = prev[j - 1] + 1 if x == b[j - 1] else max(prev[j], row[j - 1])
    out, i, j = [], n, m
    while i and j:
        if a[i - 1] == b[j - 1]:
            out.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out[::-1]


def _changed_line_hunks(chosen: str, rejected: str) -> list[tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """Runs of unmatched lines between consecutive LCS matches: ([chosen line bounds], [rejected ...])."""
    cb, rb = line_bounds(chosen), line_bounds(rejected)
    matches = lcs_pairs([_line_key(chosen, x) for x in cb], [_line_key(rejected, x) for x in rb])
    hunks, ci, ri = [], 0, 0
    for i, j in matches + [(len(cb), len(rb))]:
        if i > ci or j > ri:
            hunks.append((cb[ci:i], rb[ri:j]))
        ci, ri = i + 1, j + 1
    return hunks


def _line_spans(text: str, bounds: list[tuple[int, int]], lines: str) -> list[tuple[int, int]]:
    if lines == "whole":
        return list(bounds)
    return [s for s in (line_span(text, a, b) for a, b in bounds) if s is not None]


def lcs_regions(
    chosen: str, rejected: str, *, refine: bool = False, fenced: bool = True, lines: str = "whole"
) -> Regions:
    """Target-DPO Algorithm 1: D+ = chosen lines not in the LCS, D- = rejected lines not in it.

    One span per changed line: the whole line (`lines="whole"`, as the official code) or its
    content from the first non-blank character (`lines="content"`); see the module docstring.
    `refine=True` narrows each hunk of changed lines to the differing words (`refine_spans`).
    `fenced=True`: when both texts hold a fenced code block, only the code is compared.
    """
    if lines not in LINE_SPANS:
        raise ValueError(f"unknown line span convention {lines!r} (known: {', '.join(LINE_SPANS)})")
    if fenced:
        c_code, r_code = fenced_code_span(chosen), fenced_code_span(rejected)
        if c_code and r_code:
            inner = lcs_regions(chosen[slice(*c_code)], rejected[slice(*r_code)], refine=refine, fenced=False, lines=lines)
            return Regions(_shift(inner.chosen_spans, c_code[0]), _shift(inner.rejected_spans, r_code[0]))
    c_spans: list[tuple[int, int]] = []
    r_spans: list[tuple[int, int]] = []
    for c_lines, r_lines in _changed_line_hunks(chosen, rejected):
        c_hunk, r_hunk = _line_spans(chosen, c_lines, lines), _line_spans(rejected, r_lines, lines)
        if refine:
            c_hunk, r_hunk = refine_spans(chosen, rejected, c_hunk, r_hunk)
        c_spans += c_hunk
        r_spans += r_hunk
    return Regions(tuple(c_spans), tuple(r_spans))


def _shift(spans: Spans, offset: int) -> Spans:
    return tuple((s + offset, e + offset) for s, e in spans)


# --------------------------------------------------------------------------------------------------
# word-level refinement

_WORD = re.compile(r"\w+|\s+|[^\w\s]+")


def _words(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for s, e in spans for m in _WORD.finditer(text, s, e)]


def _merge(ranges: list[tuple[int, int]]) -> Spans:
    out: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def _marked(words: list[tuple[str, int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """Char ranges of words[lo:hi]; an empty range marks the word where the text diverges instead."""
    if lo == hi:  # the other side inserted words here: this side goes wrong at its next word
        lo, hi = (lo, lo + 1) if lo < len(words) else (lo - 1, lo)
    return [(w[1], w[2]) for w in words[max(lo, 0) : hi]]


def refine_spans(
    chosen: str, rejected: str, chosen_spans: Sequence[tuple[int, int]], rejected_spans: Sequence[tuple[int, int]]
) -> tuple[Spans, Spans]:
    """Narrow spans of changed lines to the words that differ (difflib over word tokens).

    Words are runs of word characters, of whitespace, or of other characters (">=", "):"). Where
    one side only inserts words, the other side marks the word at which it diverges (the next
    word, or the last one at the end), so a line that changed never ends up without a span.
    """
    a, b = _words(chosen, chosen_spans), _words(rejected, rejected_spans)
    if not a or not b:  # nothing to align against: the whole lines differ
        return tuple(chosen_spans), tuple(rejected_spans)
    ops = SequenceMatcher(None, [w[0] for w in a], [w[0] for w in b], autojunk=False).get_opcodes()
    c_marks, r_marks = [], []
    for tag, i1, i2, j1, j2 in ops:
        if tag != "equal":
            c_marks += _marked(a, i1, i2)
            r_marks += _marked(b, j1, j2)
    return _merge(c_marks), _merge(r_marks)


# --------------------------------------------------------------------------------------------------
# markdown fences


def fenced_code_span(text: str) -> tuple[int, int] | None:
    """Where the code of the answer's fenced block (as `focalpo.extract.extract_code` picks it) lies.

    None when the text has no fence, or when the code does not occur verbatim in the text (an
    indented or CRLF fence, which extraction rewrites); callers then use the whole text.
    """
    from focalpo.extract import extract_code

    if "```" not in text and "~~~" not in text:
        return None
    code = extract_code(text)
    start = text.find(code) if code and code != text else -1
    return None if start < 0 else (start, start + len(code))


# --------------------------------------------------------------------------------------------------
# pair records


def _prefix_suffix_regions(chosen: str, rejected: str, *, unit: str = "line", **_: Any) -> Regions:
    ps = common_prefix_suffix(chosen, rejected, unit)
    c_mid, r_mid = (ps.prefix_len, ps.chosen_suffix_start), (ps.prefix_len, ps.rejected_suffix_start)
    return Regions(tuple(x for x in [c_mid] if x[1] > x[0]), tuple(x for x in [r_mid] if x[1] > x[0]))


def _lcs_method(
    chosen: str, rejected: str, *, refine: bool = False, fenced: bool = True, lines: str = "whole", **_: Any
) -> Regions:
    return lcs_regions(chosen, rejected, refine=refine, fenced=fenced, lines=lines)


METHODS: dict[str, Callable[..., Regions]] = {"lcs": _lcs_method, "prefix-suffix": _prefix_suffix_regions}


def localize_pair(
    prompt: Text,
    chosen: Text,
    rejected: Text,
    *,
    method: str = "lcs",
    unit: str = "line",
    refine: bool = False,
    fenced: bool = True,
    lines: str = "whole",
    meta: dict | None = None,
) -> PreferencePair:
    """A localised pair record: spans from `method`, and always the common prefix/suffix (`unit`).
    `refine`, `fenced` and `lines` are options of the `lcs` method (see `lcs_regions`)."""
    if method not in METHODS:
        raise ValueError(f"unknown localisation method {method!r} (known: {', '.join(METHODS)})")
    c, r = completion_text(chosen), completion_text(rejected)
    regions = METHODS[method](c, r, unit=unit, refine=refine, fenced=fenced, lines=lines)
    ps = common_prefix_suffix(c, r, unit)
    lcs_options = {"refine": refine, "fenced": fenced, "lines": lines}
    options = {"method": method, "unit": unit, **(lcs_options if method == "lcs" else {})}
    return PreferencePair(
        prompt, chosen, rejected,
        chosen_spans=regions.chosen_spans, rejected_spans=regions.rejected_spans,
        prefix_len=ps.prefix_len, chosen_suffix_start=ps.chosen_suffix_start,
        rejected_suffix_start=ps.rejected_suffix_start,
        meta={**(meta or {}), "localize": options},
    )  # fmt: skip


def trl_row_fields(row: Any, where: str) -> tuple[Text, Text, Text, dict]:
    """(prompt, chosen, rejected, other fields) of a TRL preference row; errors name `where` and the field.

    An implicit-prompt conversational row (no `prompt`; chosen and rejected are whole conversations
    ending in one assistant message) is split TRL-style: the shared leading messages are the prompt.
    """
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for name in ("chosen", "rejected"):
        if name not in row:
            raise ValueError(f"{where}: field {name!r}: missing")
    prompt, chosen, rejected = row.get("prompt"), row["chosen"], row["rejected"]
    if prompt is None and not (isinstance(chosen, list) and isinstance(rejected, list)):
        raise ValueError(f"{where}: field 'prompt': missing (only conversational rows may leave it implicit)")
    if prompt is None:
        prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
        if prompt != row["rejected"][:-1]:
            raise ValueError(f"{where}: field 'rejected': without a 'prompt', chosen and rejected must share all but their last message")
    extra = {k: v for k, v in row.items() if k not in FIELDS}  # old localisation is recomputed, not kept
    PreferencePair.from_json({"prompt": prompt, "chosen": chosen, "rejected": rejected}, where=where)  # validates
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    return prompt, chosen, rejected, {**meta, **extra}


@dataclass(frozen=True)
class LocalizeStats:
    pairs: int
    identical: int  # pairs whose completions do not differ under the method (no span on either side)
    chosen_chars: int  # characters covered by chosen spans, summed over pairs
    rejected_chars: int
    chosen_spans: int
    rejected_spans: int

    def summary(self, method: str, out: str | os.PathLike) -> str:
        n = max(self.pairs, 1)
        return (
            f"localize ({method}): {self.pairs} pairs -> {out}; {self.identical} without a difference; "
            f"per pair: chosen {self.chosen_spans / n:.2f} spans / {self.chosen_chars / n:.1f} chars, "
            f"rejected {self.rejected_spans / n:.2f} spans / {self.rejected_chars / n:.1f} chars"
        )


def _stats(pairs: list[PreferencePair]) -> LocalizeStats:
    def chars(spans: Spans) -> int:
        return sum(e - s for s, e in spans)

    return LocalizeStats(
        pairs=len(pairs),
        identical=sum(1 for p in pairs if not p.chosen_spans and not p.rejected_spans),
        chosen_chars=sum(chars(p.chosen_spans or ()) for p in pairs),
        rejected_chars=sum(chars(p.rejected_spans or ()) for p in pairs),
        chosen_spans=sum(len(p.chosen_spans or ()) for p in pairs),
        rejected_spans=sum(len(p.rejected_spans or ()) for p in pairs),
    )


def localize_file(
    in_path: str | os.PathLike | Source,
    out_path: str | os.PathLike,
    *,
    method: str = "lcs",
    overwrite: bool = False,
    **options: Any,
) -> LocalizeStats:
    """Read TRL prompt/chosen/rejected rows (any `focalpo.datasets_io` source: .jsonl, .jsonl.gz, a .json
    list, parquet, a `save_to_disk` directory, a Hub id), write pair records (JSONL, or parquet for a
    `.parquet` path).

    Every row is read and localised before anything is written; a bad row raises ValueError naming
    file:line (file[i] for a JSON list or a dataset's row) and field, and leaves `out_path` untouched.
    """
    if os.path.exists(out_path) and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass --overwrite to replace it, or --out another path")
    pairs = []
    for where, row in iter_source_rows(in_path, objects=False):
        prompt, chosen, rejected, meta = trl_row_fields(row, where)
        pairs.append(localize_pair(prompt, chosen, rejected, method=method, meta={**meta, "source": where}, **options))
    if not pairs:
        raise ValueError(f"{in_path}: no rows")
    write_pairs(out_path, pairs, overwrite=overwrite)
    return _stats(pairs)


@dataclass
class LocalizeConfig:
    """Options of `focalpo localize` (flags, `--config` YAML, key=value overrides)."""

    input: str = ""  # TRL preference rows: .jsonl(.gz), .json list, .parquet, save_to_disk dir, Hub id
    out: str = ""  # pair records: JSONL, or parquet when it ends in .parquet
    split: str | None = None  # dataset split (Hub id, DatasetDict directory); Hub default: train
    columns: dict[str, str] = field(default_factory=dict)  # focalpo field -> source column (prompt: question)
    method: str = "lcs"  # lcs (Target-DPO D+/D-) | prefix-suffix (Focused-DPO middles)
    unit: str = "line"  # prefix-suffix granularity: line | char
    refine: bool = False  # lcs: narrow changed lines to the differing words
    fenced: bool = True  # lcs: compare the fenced code when both completions hold one
    lines: str = "whole"  # lcs: a changed line's span is the whole line | its content
    overwrite: bool = False


def run_localize(cfg: LocalizeConfig) -> LocalizeStats:
    """`focalpo localize`: `localize_file` with the config's options."""
    if not cfg.input or not cfg.out:
        raise ValueError("localize config: give input (--in) and out (--out)")
    if cfg.method not in ("lcs", "prefix-suffix"):
        raise ValueError(f"localize config: method {cfg.method!r}: lcs | prefix-suffix")
    return localize_file(data_source(cfg.input, cfg.split, cfg.columns), cfg.out, method=cfg.method, overwrite=cfg.overwrite, unit=cfg.unit,
                         refine=cfg.refine, fenced=cfg.fenced, lines=cfg.lines)
