"""Tests of focalpo.localize: prefix/suffix, LCS over lines (against brute force), refinement, fences, CLI.

Run: .venv/bin/python -m pytest tests/test_localize.py -q
"""

from __future__ import annotations

import difflib
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focalpo.cli import main
from focalpo.localize import (
    common_prefix_suffix,
    fenced_code_span,
    lcs_pairs,
    lcs_regions,
    line_bounds,
    localize_pair,
    refine_spans,
)
from focalpo.pairs import check_record, read_pairs

F = "```"

# Target-DPO's Listing 1/2 style: two versions of a function that differ in exactly two lines.
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


def _texts(text: str, spans) -> list[str]:
    return [text[s:e] for s, e in spans]


# --------------------------------------------------------------------------------------------------
# common prefix / suffix


def test_prefix_suffix_char_level_hand_example():
    ps = common_prefix_suffix("abcXYdef", "abcZdef", unit="char")
    assert (ps.prefix_len, ps.chosen_suffix_start, ps.rejected_suffix_start) == (3, 5, 4)


def test_prefix_suffix_never_overlap():
    # "aa" vs "aaa": prefix takes 2, the suffix gets nothing of the shorter text.
    ps = common_prefix_suffix("aa", "aaa", unit="char")
    assert (ps.prefix_len, ps.chosen_suffix_start, ps.rejected_suffix_start) == (2, 2, 3)
    ps = common_prefix_suffix("x\nx\n", "x\nx\nx\n", unit="line")
    assert (ps.prefix_len, ps.chosen_suffix_start, ps.rejected_suffix_start) == (4, 4, 6)


def test_prefix_suffix_line_level_snaps_to_line_starts():
    ps = common_prefix_suffix(CHOSEN, REJECTED, unit="line")
    assert CHOSEN[: ps.prefix_len].endswith("    for x in xs:\n")  # the first 4 lines are common
    assert CHOSEN[ps.prefix_len : ps.chosen_suffix_start].startswith("        if x >= 0:")
    assert CHOSEN[ps.chosen_suffix_start :] == ""  # the last line differs: empty suffix
    ps = common_prefix_suffix("a = 1\nb = 2\nc = 3\n", "a = 1\nb = 9\nc = 3\n")
    assert (ps.prefix_len, ps.chosen_suffix_start, ps.rejected_suffix_start) == (6, 12, 12)


def test_prefix_suffix_rejects_unknown_unit():
    with pytest.raises(ValueError, match="unit must be one of"):
        common_prefix_suffix("a", "b", unit="word")


texts = st.text(alphabet="ab\n ", max_size=12)


@given(texts, texts, st.sampled_from(["char", "line"]))
def test_prefix_suffix_invariants(chosen, rejected, unit):
    ps = common_prefix_suffix(chosen, rejected, unit)
    p, cs, rs = ps.prefix_len, ps.chosen_suffix_start, ps.rejected_suffix_start
    assert chosen[:p] == rejected[:p]
    assert chosen[cs:] == rejected[rs:]
    assert p <= cs <= len(chosen) and p <= rs <= len(rejected)
    assert len(chosen) - cs == len(rejected) - rs  # same suffix on both sides
    check_record(localize_pair("", chosen, rejected, method="prefix-suffix", unit=unit).to_json(), "x")
    if unit == "char":  # maximal: neither can be extended
        assert p == min(len(chosen), len(rejected)) or chosen[p] != rejected[p]
        assert cs == p or rs == p or chosen[cs - 1] != rejected[rs - 1]
    else:
        assert all(b in (0, len(t)) or t[b - 1] == "\n" for t, b in ((chosen, p), (chosen, cs), (rejected, rs)))


# --------------------------------------------------------------------------------------------------
# LCS


def _lcs_length_bruteforce(a, b) -> int:
    """Longest subsequence of `a` (tried longest first) that is also a subsequence of `b`."""

    def is_subsequence(sub, seq):
        it = iter(seq)
        return all(x in it for x in sub)

    for k in range(min(len(a), len(b)), 0, -1):
        if any(is_subsequence(c, b) for c in itertools.combinations(a, k)):
            return k
    return 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=8), st.lists(st.sampled_from("abc"), max_size=8))
def test_lcs_is_a_longest_common_subsequence(a, b):
    pairs = lcs_pairs(a, b)
    assert all(a[i] == b[j] for i, j in pairs)
    assert all(i1 < i2 and j1 < j2 for (i1, j1), (i2, j2) in zip(pairs, pairs[1:]))
    assert len(pairs) == _lcs_length_bruteforce(a, b)


def test_difflib_is_not_an_lcs_but_lcs_pairs_is():
    a, b = ["c", "a", "c"], ["a", "b", "c"]
    matched = sum(m.size for m in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
    assert matched == 1  # SequenceMatcher takes the first longest block, "c"↔"c", and loses "a"
    assert lcs_pairs(a, b) == [(1, 0), (2, 2)]


def test_lcs_exactly_the_two_changed_lines():
    r = lcs_regions(CHOSEN, REJECTED)  # whole lines: indentation, content, newline
    assert _texts(CHOSEN, r.chosen_spans) == ["        if x >= 0:\n", "    return total / count\n"]
    assert _texts(REJECTED, r.rejected_spans) == ["        if x > 0:\n", "    return total / len(xs)\n"]
    content = lcs_regions(CHOSEN, REJECTED, lines="content")
    assert _texts(CHOSEN, content.chosen_spans) == ["if x >= 0:\n", "return total / count\n"]
    assert _texts(REJECTED, content.rejected_spans) == ["if x > 0:\n", "return total / len(xs)\n"]
    with pytest.raises(ValueError, match="unknown line span convention 'words'"):
        lcs_regions(CHOSEN, REJECTED, lines="words")


def test_lcs_inserted_and_deleted_lines():
    r = lcs_regions("a\nb\nc\n", "a\nc\nd\n")
    assert _texts("a\nb\nc\n", r.chosen_spans) == ["b\n"]
    assert _texts("a\nc\nd\n", r.rejected_spans) == ["d\n"]
    assert lcs_regions("x = 1\n", "x = 1\n") == lcs_regions("", "")
    assert lcs_regions("", "y\n").rejected_spans == ((0, 2),)


def test_whitespace_conventions():
    # Trailing spaces and CRLF are not changes; indentation is a change.
    for lines in ("whole", "content"):
        assert lcs_regions("a = 1\nb = 2\n", "a = 1  \r\nb = 2", lines=lines).rejected_spans == ()
        assert lcs_regions("a\nb", "a\nc", lines=lines).chosen_spans == ((2, 3),)  # last line without newline
    # whole lines (the default): an inserted blank line is a changed line, indentation is in the span
    assert _texts("a = 1\n\n\nb = 2\n", lcs_regions("a = 1\n\n\nb = 2\n", "a = 1\nb = 2\n").chosen_spans) == ["\n", "\n"]
    r = lcs_regions("if x:\n    y()\n", "if x:\ny()\n")
    assert _texts("if x:\n    y()\n", r.chosen_spans) == ["    y()\n"]
    assert _texts("if x:\ny()\n", r.rejected_spans) == ["y()\n"]
    # content only: blank lines never make spans, a span starts after the indentation
    assert lcs_regions("a = 1\n\n\nb = 2\n", "a = 1\nb = 2\n", lines="content").chosen_spans == ()
    r = lcs_regions("if x:\n    y()\n", "if x:\ny()\n", lines="content")
    assert _texts("if x:\n    y()\n", r.chosen_spans) == ["y()\n"]


def _official_line_masks(chosen: str, rejected: str) -> tuple[set[int], set[int]]:
    """The official Target-DPO marking (JieWu02/Target-DPO, scripts/diff_lib.py, `get_line_masks`)
    rewritten for a one-token-per-character tokenizer, where a token position is a character
    offset: lines compared with difflib.ndiff, each changed line marked over its
    `splitlines(keepends=True)` range. Independent of focalpo's LCS and span code."""
    import difflib

    def positions(text):
        out, start = [], 0
        for line in text.splitlines(keepends=True):
            out.append((start, start + len(line)))
            start += len(line)
        return out

    c_pos, r_pos = positions(chosen), positions(rejected)
    c_mask, r_mask, ci, ri = set(), set(), 0, 0
    for d in difflib.ndiff(chosen.splitlines(), rejected.splitlines()):
        if d.startswith("  "):
            ci, ri = ci + 1, ri + 1
        elif d.startswith("- "):
            c_mask |= set(range(*c_pos[ci]))
            ci += 1
        elif d.startswith("+ "):
            r_mask |= set(range(*r_pos[ri]))
            ri += 1
    return c_mask, r_mask


OFFICIAL_CASES = [
    (CHOSEN, REJECTED),
    ("def f(x):\n    if x:\n        return 1\n    return 0\n", "def f(x):\n    if not x:\n        return 1\n    return 0\n"),
    ("def g(a):\n    b = a * 2\n    return b\n", "def g(a):\n    return a\n"),  # a deleted and a changed line
    ("def h(s):\n    s = s.strip()\n\n    return s.upper()\n", "def h(s):\n    return s.lower()\n"),  # a blank line goes too
    ("x = [1,\n     2]\nprint(x)", "x = [1,\n     3]\nprint(x)"),  # continuation indent, no final newline
]


@pytest.mark.parametrize("chosen, rejected", OFFICIAL_CASES)
def test_whole_line_spans_mark_what_the_official_code_marks(chosen, rejected):
    r = lcs_regions(chosen, rejected)
    c_mask, r_mask = _official_line_masks(chosen, rejected)
    assert {i for s, e in r.chosen_spans for i in range(s, e)} == c_mask
    assert {i for s, e in r.rejected_spans for i in range(s, e)} == r_mask
    content = lcs_regions(chosen, rejected, lines="content")  # a strict subset wherever a line is indented
    assert {i for s, e in content.rejected_spans for i in range(s, e)} <= r_mask


def test_line_bounds():
    assert line_bounds("a\nbb\n\nc") == [(0, 2), (2, 5), (5, 6), (6, 7)]
    assert line_bounds("") == []


# --------------------------------------------------------------------------------------------------
# refinement


def test_refine_narrows_changed_lines_to_words():
    r = lcs_regions(CHOSEN, REJECTED, refine=True)
    assert _texts(CHOSEN, r.chosen_spans) == [">=", "count"]
    assert _texts(REJECTED, r.rejected_spans) == [">", "len(xs)"]


def test_refine_insertion_marks_where_the_other_side_diverges():
    chosen, rejected = "x = f(a, b)\n", "x = f(a)\n"
    c, r = refine_spans(chosen, rejected, [(0, 12)], [(0, 9)])
    assert _texts(chosen, c) == [", b"]
    assert _texts(rejected, r) == [")"]  # the rejected goes wrong at ")" where "," was due


def test_refine_with_one_side_empty_keeps_whole_lines():
    assert refine_spans("a\nnew()\n", "a\n", [(2, 8)], []) == (((2, 8),), ())


# --------------------------------------------------------------------------------------------------
# fences


def test_fenced_code_is_localised_on_the_code_and_mapped_back():
    chosen = f"Here is the fix:\n\n{F}python\n{CHOSEN}{F}\nIt counts positives."
    rejected = f"Sure!\n{F}python\n{REJECTED}{F}\nDone."
    r = lcs_regions(chosen, rejected)
    assert _texts(chosen, r.chosen_spans) == ["        if x >= 0:\n", "    return total / count\n"]
    assert _texts(rejected, r.rejected_spans) == ["        if x > 0:\n", "    return total / len(xs)\n"]
    unfenced = lcs_regions(chosen, rejected, fenced=False)
    assert "Sure!\n" in _texts(rejected, unfenced.rejected_spans)  # prose counts without fences


def test_fenced_code_span():
    text = f"Intro\n{F}py\nx = 1\n{F}\n"
    s, e = fenced_code_span(text)
    assert text[s:e] == "x = 1\n"
    assert fenced_code_span("x = 1\n") is None
    assert fenced_code_span(f"Intro\n  {F}py\n  x = 1\n  y = 2\n  {F}\n") is None  # dedented by extraction


# --------------------------------------------------------------------------------------------------
# records and the CLI


def test_localize_pair_fills_spans_and_boundaries():
    p = localize_pair("Write it.\n", CHOSEN, REJECTED, meta={"id": 7})
    check_record(p.to_json(), "x")
    assert len(p.chosen_spans) == 2 and p.prefix_len == CHOSEN.index("        if")
    assert p.meta == {"id": 7, "localize": {"method": "lcs", "unit": "line", "refine": False, "fenced": True, "lines": "whole"}}
    content = localize_pair("Write it.\n", CHOSEN, REJECTED, lines="content")
    assert content.meta["localize"]["lines"] == "content"
    assert [CHOSEN[s:e] for s, e in content.chosen_spans] == ["if x >= 0:\n", "return total / count\n"]
    q = localize_pair("Write it.\n", CHOSEN, REJECTED, method="prefix-suffix")
    assert q.chosen_spans == ((q.prefix_len, q.chosen_suffix_start),)
    with pytest.raises(ValueError, match="unknown localisation method 'diff'"):
        localize_pair("", "a", "b", method="diff")


def _rows():
    return [
        {"prompt": "Write f.\n", "chosen": CHOSEN, "rejected": REJECTED, "id": "t/0"},
        {"prompt": "Same.\n", "chosen": "x = 1\n", "rejected": "x = 1\n"},
        {
            "prompt": [{"role": "user", "content": "Write f."}],
            "chosen": [{"role": "assistant", "content": CHOSEN}],
            "rejected": [{"role": "assistant", "content": REJECTED}],
        },
    ]


def test_cli_localize_jsonl_and_json_list(tmp_path, capsys):
    src = tmp_path / "trl.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    out = tmp_path / "pairs.jsonl"
    assert main(["localize", "--in", str(src), "--method", "lcs", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 pairs" in printed and "1 without a difference" in printed
    pairs = read_pairs(out)
    assert [len(p.rejected_spans) for p in pairs] == [2, 0, 2]
    assert pairs[0].meta["id"] == "t/0" and pairs[0].meta["source"] == f"{src}:1"
    assert pairs[2].is_conversational and pairs[2].rejected_spans == pairs[0].rejected_spans

    listed = tmp_path / "target_dpo.json"
    listed.write_text(json.dumps(_rows()))
    out2 = tmp_path / "pairs2.jsonl"
    assert main(["localize", "--in", str(listed), "--method", "prefix-suffix", "--out", str(out2)]) == 0
    assert [p.meta["source"] for p in read_pairs(out2)] == [f"{listed}[{i}]" for i in range(3)]


def test_cli_localize_refuses_overwrite_and_names_bad_rows(tmp_path, capsys):
    src = tmp_path / "trl.jsonl"
    src.write_text(json.dumps(_rows()[0]) + "\n" + json.dumps({"prompt": "p", "chosen": 5, "rejected": "x"}) + "\n")
    out = tmp_path / "pairs.jsonl"
    assert main(["localize", "--in", str(src), "--out", str(out)]) == 2
    assert f"{src}:2: field 'chosen'" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("keep me\n")
    src.write_text(json.dumps(_rows()[0]) + "\n")
    assert main(["localize", "--in", str(src), "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_text() == "keep me\n"
    assert main(["localize", "--in", str(src), "--out", str(out), "--overwrite"]) == 0
    assert len(read_pairs(out)) == 1
    src.write_text(json.dumps({"chosen": "a", "rejected": "b"}) + "\n")
    assert main(["localize", "--in", str(src), "--out", str(out), "--overwrite"]) == 2
    assert f"{src}:1: field 'prompt': missing" in capsys.readouterr().err


def test_cli_localize_implicit_prompt_conversation(tmp_path):
    user = {"role": "user", "content": "Write f."}
    row = {"chosen": [user, {"role": "assistant", "content": "a\n"}], "rejected": [user, {"role": "assistant", "content": "b\n"}]}
    src, out = tmp_path / "trl.jsonl", tmp_path / "pairs.jsonl"
    src.write_text(json.dumps(row) + "\n")
    assert main(["localize", "--in", str(src), "--out", str(out), "--refine"]) == 0
    (pair,) = read_pairs(out)
    assert pair.prompt == [user] and pair.chosen_spans == ((0, 1),)  # refined: "a", not its newline


def test_cli_localize_parquet_in_with_columns_and_parquet_out(tmp_path, capsys):
    from datasets import Dataset

    renamed = [{"question": r["prompt"], "accepted": r["chosen"], "rejected": r["rejected"]} for r in _rows()[:2]]
    src = tmp_path / "trl.parquet"
    Dataset.from_list(renamed).to_parquet(str(src))
    out = tmp_path / "pairs.parquet"
    assert main(["localize", "--in", str(src), "--columns", "prompt=question,chosen=accepted", "--out", str(out)]) == 0
    assert "2 pairs" in capsys.readouterr().out
    from_jsonl = tmp_path / "pairs.jsonl"
    jsonl = tmp_path / "trl.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in _rows()[:2]))
    assert main(["localize", "--in", str(jsonl), "--out", str(from_jsonl)]) == 0
    got, want = read_pairs(out), read_pairs(from_jsonl)
    assert got == want  # same pairs, spans and boundaries whichever the format
    assert [p.meta["source"] for p in got] == [f"{src}[0]", f"{src}[1]"]
    # a mapped column the file lacks, and a bad row, are named; nothing is written
    out2 = tmp_path / "none.parquet"
    assert main(["localize", "--in", str(src), "--columns", "prompt=query", "--out", str(out2)]) == 2
    assert f"{src}: column 'query' (mapped to 'prompt') not found" in capsys.readouterr().err
    assert main(["localize", "--in", str(src), "--out", str(out2)]) == 2
    assert f"{src}[0]: field 'chosen': missing" in capsys.readouterr().err
    assert not out2.exists()
    assert main(["localize", "--in", str(src), "--columns", "prompt", "--out", str(out2)]) == 2
