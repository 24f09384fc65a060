"""Tests of `focalpo view` (`focalpo.report.viewer`, `diffview`, `evidence`) on pairs files in the shapes the
pipelines write: a focused run (pairs and records from `focalpo.rank.focused_selection`, records as
`focalpo.pipelines.focused.build_record` writes them), a CodeFlow run (a record with its debugging history)
and `focalpo localize` output (a TRL file through `localize_file`), with a tiny BPE tokenizer trained here.

Run: .venv/bin/python -m pytest -q tests/report/test_viewer.py
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest

from focalpo.cli import main
from focalpo.localize import localize_file, localize_pair
from focalpo.pairs import write_pairs
from focalpo.rank import focused_selection, ranks
from focalpo.report.viewer import ViewConfig, view
from focalpo.toyworld.model import train_tokenizer
from focalpo.weights import compute_weighted_examples

ASK = "Write a function `f(x)`."
WELL = {  # 4 programs x 4 tests: p0 passes all, every test it passes is confirmed by another program, no tie
    "programs": ["def f(x):\n    return x + 2\n", "def f(x):\n    return x + 5\n",
                 "def f(x):\n    y = x\n    return y\n", "def f(x):\n    return None\n"],
    "matrix": [[True, True, True, True], [True, True, False, True], [False, True, True, False],
               [False, False, False, False]]}
THIN = {  # q0 alone passes t0
    "programs": ["def f(x):\n    return x * 2\n", "def f(x):\n    return x * 3\n", "def f(x):\n    pass\n"],
    "matrix": [[True, True], [False, True], [False, False]]}
CF_FAIL = "def solve(x):\n    s = '</script><img src=x onerror=alert(1)>'\n    return x * 3\n"
CF_PASS = "def solve(x):\n    return x * x\n"
TRL = [{"prompt": "def g():\n", "chosen": "x = 2\ny = 1\nreturn x + y\n", "rejected": "x = 5\ny = 1\nreturn x + y\n"},
       {"prompt": "def h():\n", "chosen": "a = 1\nreturn a\n", "rejected": "a = 1\nprint(a)\nreturn a\n"}]
CORPUS = [ASK, CF_FAIL, CF_PASS, *WELL["programs"], *THIN["programs"], *(r[k] for r in TRL for k in r)]


def _focused_record(task_id: str, programs: list[str], matrix: list[list[bool]]) -> tuple[dict, list]:
    """A record and its pairs as the focused pipeline builds them (tests are named, reasons filled)."""
    sel = focused_selection(ASK, programs, matrix, task_id=task_id)
    tests = [f"assert f({j}) == {2 * j}" for j in range(len(matrix[0]))]
    good = set(sel.correct)
    record = {"task_id": task_id, "seed": 1, "prompt": ASK, "programs": programs, "tests": tests, "dropped": {},
              "pass_matrix": matrix, "reasons": [["" if ok else "wrong_answer: AssertionError" for ok in row]
                                                 for row in matrix],
              "load_errors": [""] * len(programs), "code_scores": sel.code_scores, "test_scores": sel.test_scores,
              "ranks": ranks(sel.code_scores), "ground_truth_tests": sel.ground_truth,
              "correct": [i in good for i in range(len(programs))], "status": "ok",
              "pairs": [p.to_json() for p in sel.pairs]}
    return record, sel.pairs


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS * 3, vocab_size=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tokenizer):
    """focused/ (pairs.jsonl + records.jsonl), codeflow/ (same), localize/pairs.jsonl, tok/ (the tokenizer)."""
    root = tmp_path_factory.mktemp("runs")
    fo = root / "focused"
    fo.mkdir()
    (well, well_pairs), (thin, thin_pairs) = (_focused_record("toy/well", **WELL), _focused_record("toy/thin", **THIN))
    (fo / "records.jsonl").write_text(json.dumps(well) + "\n" + json.dumps(thin) + "\n")
    write_pairs(fo / "pairs.jsonl", [*well_pairs, *thin_pairs])
    cf = root / "codeflow"
    cf.mkdir()
    pair = localize_pair(ASK, CF_PASS, CF_FAIL, meta={"task_id": "toy/cf", "source": "codeflow", "chosen_iteration": 2,
                                                      "rejected_iteration": 0, "rejected_error_type": "WrongAnswer"})
    record = {"task_id": "toy/cf", "instruction": ASK, "status": "fixed", "reason": "", "iterations": 3, "versions": [
        {"iteration": 0, "solution": CF_FAIL, "passed": False, "load_error": "", "verdicts": [],
         "error_type": "WrongAnswer", "feedback": "1 of 1 tests failed.\n\nFAILED assert_0: AssertionError"},
        {"iteration": 1, "format_error": "no_code", "message": "the answer has no <file> block"},
        {"iteration": 2, "solution": CF_PASS, "passed": True, "load_error": "", "verdicts": [],
         "coverage": {"percent": 100.0}}],
        "pair": pair.to_json(), "filters": {"identical_ast": False}, "judge": None, "solution_file": "sol.py",
        "test_file": "test_sol.py", "test_code": "from sol import solve\nassert solve(3) == 9\n", "kept": True}
    (cf / "records.jsonl").write_text(json.dumps(record) + "\n")
    write_pairs(cf / "pairs.jsonl", [pair])
    lo = root / "localize"
    lo.mkdir()
    (lo / "trl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRL))
    localize_file(lo / "trl.jsonl", lo / "pairs.jsonl", method="lcs")
    tokenizer.save_pretrained(root / "tok")
    return root


def _page(path) -> str:
    return path.read_text(encoding="utf-8")


def _payload(page: str) -> list[dict]:
    text = re.search(r'<script type="application/json" id="payload">(.*?)</script>', page, re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


def _sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)" class="pair">(.*?)</section>', page, flags=re.S))


def _pre(section: str, side: str) -> str:
    return re.search(rf'<pre class="code" data-side="{side}">(.*?)</pre>', section, re.S).group(1)


def _lines(path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


# --------------------------------------------------------------------------------------------------
# every pair, one self-contained file


def test_every_pair_is_in_the_payload_and_the_page(runs):
    for run in ("focused", "codeflow", "localize"):
        result = view(ViewConfig(pairs=str(runs / run / "pairs.jsonl")))
        page, n = _page(runs / run / "pairs.html"), _lines(runs / run / "pairs.jsonl")
        assert result == {**result, "out": str(runs / run / "pairs.html"), "pairs": n}
        rows = _payload(page)
        assert [r["k"] for r in rows] == [f"p{i}" for i in range(n)] == list(_sections(page))
        assert [r["w"] for r in rows] == [str(i + 1) for i in range(n)]  # file lines
        assert {r["p"] for r in rows} == {"localize": {"other"}}.get(run, {run})


def test_no_external_reference_and_escaped_model_output(runs, tokenizer):
    view(ViewConfig(pairs=str(runs / "codeflow" / "pairs.jsonl"), tokenizer=str(runs / "tok"), out=str(runs / "cf.html")))
    for page in (_page(runs / "cf.html"), _page(runs / "codeflow" / "pairs.html")):
        assert "http://" not in page and "https://" not in page and "<link" not in page and "@import" not in page
        assert not re.search(r"""\ssrc\s*=""", page.replace("src=x onerror", ""))  # the escaped model text only
        assert "<img" not in page and "</script><img" not in page
        assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text
        assert page.count("<script") == 3  # the payload, the scheme names, the index/paint script


# --------------------------------------------------------------------------------------------------
# the code: character diff, localised regions


def test_char_diff_and_spans_in_the_page(runs):
    view(ViewConfig(pairs=str(runs / "localize" / "pairs.jsonl")))
    section = _sections(_page(runs / "localize" / "pairs.html"))["p0"]
    for side, char in (("chosen", "2"), ("rejected", "5")):
        pre = _pre(section, side)
        assert re.findall(r'<span class="dc[^"]*">(.*?)</span>', pre) == [char]
        assert re.findall(r'<span class="[^"]*\bsp\b[^"]*">', pre)  # the LCS span of the changed line
    assert "D+" in section and "D-" in section


# --------------------------------------------------------------------------------------------------
# focused: consensus tests, thin evidence


def test_focused_pair_shows_pass_matrix_consensus_not_ground_truth(runs):
    view(ViewConfig(pairs=str(runs / "focused" / "pairs.jsonl")))
    page = _page(runs / "focused" / "pairs.html")
    well = _sections(page)["p0"]
    record = json.loads((runs / "focused" / "records.jsonl").read_text().splitlines()[0])
    cells = re.findall(r'<td class="(pass|fail)"', well)
    assert cells == ["pass" if ok else "fail" for row in WELL["matrix"] for ok in row]  # programs x tests
    assert "(gt)" not in page and "not ground truth" in well and "consensus test" in well
    assert [f"t{j} (c)" for j in record["ground_truth_tests"]] == re.findall(r"t\d \(c\)", well)
    assert f"<th>p0 chosen</th><td>{record['code_scores'][0]:.3g}</td><td>1</td><td>correct</td>" in well


def test_thin_evidence_flagged_only_where_thin(runs):
    view(ViewConfig(pairs=str(runs / "focused" / "pairs.jsonl")))
    page = _page(runs / "focused" / "pairs.html")
    sections, rows = _sections(page), {r["t"]: r for r in _payload(page)}
    assert rows["toy/well"]["f"] == 0 and "thin evidence" not in sections[rows["toy/well"]["k"]]
    thin = sections[rows["toy/thin"]["k"]]
    assert rows["toy/thin"]["f"] >= 1 and "thin evidence" in thin
    assert "the chosen program p0 is the only program passing t0" in thin


# --------------------------------------------------------------------------------------------------
# CodeFlow: the debugging history


def test_codeflow_pair_shows_debugging_history(runs):
    view(ViewConfig(pairs=str(runs / "codeflow" / "pairs.jsonl")))
    section = _sections(_page(runs / "codeflow" / "pairs.html"))["p0"]
    assert "codeflow · task toy/cf · status fixed" in section and "chosen: iteration 2" in section
    assert "iteration 0 (rejected): failed (WrongAnswer)" in section and "FAILED assert_0: AssertionError" in section
    assert "iteration 1: format error no_code" in section and "no &lt;file&gt; block" in section
    assert "iteration 2 (chosen): passed" in section and html.escape(CF_PASS, quote=False) in section
    assert "pass matrix" not in section.lower()


# --------------------------------------------------------------------------------------------------
# token weights


def test_token_weights_are_the_weights_modules_and_printed(runs, tokenizer):
    from focalpo.pairs import read_pairs

    schemes = ["dpo", "rpo", "target", "target-rpo", "focused"]
    result = view(ViewConfig(pairs=str(runs / "localize" / "pairs.jsonl"), tokenizer=str(runs / "tok"),
                             schemes=schemes, scheme_options={"focused": {"w_focused": 3.0}}, out=str(runs / "lw.html")))
    page = _page(runs / "lw.html")
    sections = _sections(page)
    for i, pair in enumerate(read_pairs(runs / "localize" / "pairs.jsonl")):
        expected = {s: compute_weighted_examples([pair], tokenizer, s, **({"w_focused": 3.0} if s == "focused" else {}))[0]
                    for s in schemes}
        for side in ("chosen", "rejected"):
            pre = _pre(sections[f"p{i}"], side)
            tokens = re.findall(r'<span class="t[^"]*" data-i="(\d+)" data-w="([^"]*)">', pre)
            assert [int(k) for k, _ in tokens] == list(range(len(expected["dpo"][f"{side}_weights"])))
            for k, scheme in enumerate(schemes):  # each token carries its weight under every scheme
                assert [float(w.split()[k]) for _, w in tokens] == expected[scheme][f"{side}_weights"]
            # printed without hovering: the first scheme's weight after every token
            assert [float(x) for x in re.findall(r'<sub class="w">([^<]*)</sub>', pre)] == expected["dpo"][f"{side}_weights"]
            # the tokens and gaps spell the completion, then the end-of-turn token
            text = html.unescape(re.sub(r"<[^>]+>", "", re.sub(r'<sub class="w">[^<]*</sub>', "", pre)))
            assert text == getattr(pair, f"{side}_text") + "</s>"
    notes = " ".join(result["notes"])
    assert "`dpo` = `rpo`" in notes and "`target` = `target-rpo`" in notes and "α·NLL" in notes
    assert not re.search(r"`dpo`[^.]*= `target`", notes)  # dpo weighs the whole rejected, target only D-
    assert "RPO: DPO weights; the trainer adds α·NLL on the chosen." in html.unescape(page)


def test_default_schemes_are_every_registered_one(runs):
    from focalpo.weights import SCHEMES

    result = view(ViewConfig(pairs=str(runs / "focused" / "pairs.jsonl"), tokenizer=str(runs / "tok"),
                             out=str(runs / "fw.html")))
    assert result["schemes"] == list(SCHEMES)
    # focused output has no LCS spans: the schemes that need them say so instead of failing
    assert any("`target`" in n and "Cannot weigh 2 of 2 pairs" in n for n in result["notes"])
    assert 'data-w="1 1 - - ' in _page(runs / "fw.html")


# --------------------------------------------------------------------------------------------------
# the command, errors, overwrite


def test_cli_writes_the_page_and_names_a_bad_row(runs, tmp_path, capsys):
    out = tmp_path / "v.html"
    assert main(["view", "--out", str(out), "--tokenizer", str(runs / "tok"), "--scheme", "dpo",
                 str(runs / "localize" / "pairs.jsonl")]) == 0
    assert out.is_file() and f"2 pairs in {out}" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    good = (runs / "localize" / "pairs.jsonl").read_text().splitlines()[0]
    bad.write_text(good + "\n" + json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "chosen_spans": [[2, 1]]}) + "\n")
    assert main(["view", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "chosen_spans" in err and not (tmp_path / "bad.html").exists()
    assert main(["view", str(tmp_path / "missing.jsonl")]) == 2 and "no such file" in capsys.readouterr().err


def test_records_errors_and_overwrite(runs, tmp_path):
    pairs = runs / "codeflow" / "pairs.jsonl"
    bad = tmp_path / "records.jsonl"
    bad.write_text('{"status": "fixed"}\n')
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}:1: field 'task_id'"):
        view(ViewConfig(pairs=str(pairs), records=[str(bad)], out=str(tmp_path / "x.html")))
    mine = tmp_path / "mine.html"
    mine.write_text("<html>not a viewer page</html>")
    with pytest.raises(FileExistsError, match="not a page focalpo view wrote"):
        view(ViewConfig(pairs=str(pairs), out=str(mine)))
    view(ViewConfig(pairs=str(pairs), out=str(mine), overwrite=True))
    view(ViewConfig(pairs=str(pairs), out=str(mine)))  # its own page: replaced
    assert "toy/cf" in mine.read_text() and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError, match="need a tokenizer"):
        view(ViewConfig(pairs=str(pairs), schemes=["dpo"], out=str(mine)))
    with pytest.raises(ValueError, match="unknown weight scheme"):
        view(ViewConfig(pairs=str(pairs), schemes=["nope"], tokenizer=str(runs / "tok"), out=str(mine)))


def test_records_default_and_several(runs, tmp_path):
    both = [str(runs / "focused" / "records.jsonl"), str(runs / "codeflow" / "records.jsonl")]
    union = tmp_path / "pairs.jsonl"
    union.write_text((runs / "focused" / "pairs.jsonl").read_text() + (runs / "codeflow" / "pairs.jsonl").read_text())
    view(ViewConfig(pairs=str(union)))
    assert "No records file" in _page(tmp_path / "pairs.html") and "Debugging history" not in _page(tmp_path / "pairs.html")
    result = view(ViewConfig(pairs=str(union), records=both))
    page = _page(tmp_path / "pairs.html")
    assert result["records"] == both and "3 of 3 pairs have one" in page
    assert "Debugging history" in page and "Pass matrix" in page


def test_import_is_light():
    code = ("import sys, focalpo.report.viewer; "
            "print(sorted(m for m in ('matplotlib', 'transformers', 'torch', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
