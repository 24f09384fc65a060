"""Tests of the demo report (`focalpo.toyworld.report`) on a small fake demo directory in the real formats:
data/pairs.jsonl (LCS-localised, conversational), runs/<pipeline>/records.jsonl, models/<scheme>/metrics.jsonl
and a tiny BPE tokenizer as the SFT model's. No model is trained; the whole file runs in a few seconds.

Run: .venv/bin/pytest -q tests/toyworld/test_report.py
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys

import pytest

from focalpo.localize import localize_pair
from focalpo.pairs import write_pairs
from focalpo.toyworld.model import train_tokenizer
from focalpo.toyworld.report import (ShownPair, aggregate, format_table, mean_ci, pairs_html, pick_pairs, t_critical,
                                     write_report)
from focalpo.weights import compute_weighted_examples

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ASK = "Solve the following programming problem in Python.\n\nWrite a function `solve(xs)`."
CHOSEN = "```python\ndef solve(xs):\n    xs = [x for x in xs if x > 0]\n    return sum(xs)\n```"
REJECTED = "```python\ndef solve(xs):\n    xs = [x for x in xs if x < 0]\n    return sum(xs)\n```"
CF_FAIL = "def solve(x):\n    s = '<script>alert(1)</script>'\n    return x * 3\n"
CF_PASS = "def solve(x):\n    return x * x\n"
CORPUS = [ASK, CHOSEN, REJECTED, CF_FAIL, CF_PASS, "assert solve([1, -2]) == 1", "Write a function `solve(x)`."]


def _fenced(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def _focused_record(task_id: str, pair) -> dict:
    """A focused record as `focalpo.pipelines.focused.build_record` writes it: 2 programs x 3 tests."""
    return {"task_id": task_id, "seed": 1, "prompt": ASK, "programs": [REJECTED, CHOSEN],
            "tests": ["assert solve([1, -2]) == 1", "assert solve([]) == 0", "assert solve([-1]) == 5"],
            "dropped": {"programs_duplicate": 1}, "pass_matrix": [[False, True, False], [True, True, False]],
            "reasons": [["wrong_answer: AssertionError", "", "wrong_answer: AssertionError"],
                        ["", "", "wrong_answer: AssertionError"]],
            "load_errors": ["", ""], "code_scores": [0.25, 0.75], "test_scores": [0.5, 0.375, 0.125],
            "ranks": [2, 1], "ground_truth_tests": [0], "correct": [False, True], "status": "ok",
            "pairs": [pair.to_json()]}


def _codeflow_record(task_id: str, pair) -> dict:
    """A CodeFlow record: a failing answer with feedback, an unparsable fix, then a passing fix."""
    return {"task_id": task_id, "instruction": "Write a function `solve(x)`.", "status": "fixed", "reason": "",
            "iterations": 3, "versions": [
                {"iteration": 0, "solution": CF_FAIL, "passed": False, "load_error": "", "verdicts": [],
                 "error_type": "WrongAnswer", "feedback": "1 of 1 tests failed.\n\nFAILED assert_0: AssertionError"},
                {"iteration": 1, "format_error": "no_code", "message": "the answer has no <file> block"},
                {"iteration": 2, "solution": CF_PASS, "passed": True, "load_error": "", "verdicts": [],
                 "coverage": {"percent": 100.0}}],
            "pair": pair.to_json(), "filters": {"identical_ast": False}, "judge": None, "solution_file": "sol.py",
            "test_file": "test_sol.py", "test_code": "from sol import solve\nassert solve(3) == 9\n", "kept": True}


def _metrics(path, scheme_offset: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"step": s, "epoch": s / 3, "loss": 0.69 - 0.1 * s - scheme_offset, "rewards/margins": 0.1 * s,
             "rewards/accuracies": 1.0} for s in (1, 2, 3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + json.dumps({"train_loss": 0.5}) + "\n")


def _seed_result(seed: int, sft: float, dpo: float) -> dict:
    return {"seed": seed, "pairs": {"focused": 2, "codeflow": 1, "total": 3}, "training_skipped": None,
            "summaries": {"focused": {"problems": 2, "with_correct": 2, "pairs": 2, "status": {"ok": 2},
                                      "dropped": {"programs_duplicate": 2}},
                          "codeflow": {"problems": 1, "reached_sandbox": 1, "candidate_pairs": 1, "pairs_kept": 1,
                                       "status": {"fixed": 1}, "filters": {"judge": 0}}},
            "results": {"sft": {"pass@1": sft}, "dpo": {"pass@1": dpo}},
            "stage_seconds": {"tasks": 0.5 + seed, "train:dpo": 2.0},
            "audit": {"focused": {"pairs": 2, "chosen_correct": 1, "rejected_incorrect": 2},
                      "codeflow": {"pairs": 1, "chosen_correct": 1, "rejected_incorrect": 0}}}


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS * 3, vocab_size=300)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, tokenizer):
    """One seed: 2 focused pairs and 1 CodeFlow pair (whose rejected code holds a <script> tag), records,
    the SFT tokenizer, metrics of dpo and focused, focused trained with w_focused=3."""
    d = tmp_path_factory.mktemp("demo")
    prompt = [{"role": "user", "content": ASK}]
    conv = [localize_pair(prompt, [{"role": "assistant", "content": c}], [{"role": "assistant", "content": r}],
                          meta=m) for c, r, m in [
        (CHOSEN, REJECTED, {"task_id": "toy/1", "chosen_index": 1, "rejected_index": 0, "chosen_rank": 1,
                            "rejected_rank": 2}),
        (CHOSEN, REJECTED.replace("sum", "max"), {"task_id": "toy/2", "chosen_index": 1, "rejected_index": 0}),
        (_fenced(CF_PASS), _fenced(CF_FAIL), {"task_id": "toy/cf", "source": "codeflow", "chosen_iteration": 2,
                                               "rejected_iteration": 0, "rejected_error_type": "WrongAnswer"})]]
    write_pairs(d / "data" / "pairs.jsonl", conv)
    (d / "runs" / "focused").mkdir(parents=True)
    (d / "runs" / "codeflow").mkdir(parents=True)
    (d / "runs" / "focused" / "records.jsonl").write_text(
        "".join(json.dumps(_focused_record(t, p)) + "\n" for t, p in (("toy/1", conv[0]), ("toy/2", conv[1]))))
    (d / "runs" / "codeflow" / "records.jsonl").write_text(json.dumps(_codeflow_record("toy/cf", conv[2])) + "\n")
    tokenizer.save_pretrained(d / "models" / "sft")
    for offset, scheme in enumerate(("dpo", "focused")):
        _metrics(d / "models" / scheme / "metrics.jsonl", 0.05 * offset)
    (d / "models" / "focused" / "train_config.yaml").write_text("scheme: focused\nscheme_options:\n  w_focused: 3.0\n")
    demo = {"preset": "mini", "config": {"schemes": ["dpo", "focused", "target"]}, "seeds": [_seed_result(0, 0.2, 0.4)],
            "wall_seconds": 12.5}
    paths = write_report(d, demo)
    return d, paths, conv


def _sections(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S))


def _pre(text: str, key: str, side: str) -> str:
    return re.search(rf'<pre class="code" data-pair="{key}" data-side="{side}">(.*?)</pre>', text, re.S).group(1)


# --------------------------------------------------------------------------------------------------
# numbers


def test_t_critical_known_values():
    for df, t in [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)]:
        assert t_critical(df) == pytest.approx(t, abs=5e-4)
    assert t_critical(31) == t_critical(1000) == 1.96
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_critical(0)


def test_ci_by_hand():
    """[0.2, 0.4, 0.6]: mean 0.4, s = 0.2, ci95 = t_{0.975,2} * 0.2 / sqrt(3) = 4.3027 * 0.11547 = 0.49683"""
    cell = mean_ci([0.2, 0.4, 0.6])
    assert cell["mean"] == pytest.approx(0.4) and cell["std"] == pytest.approx(0.2)
    assert cell["ci95"] == pytest.approx(0.49683, abs=1e-4)
    assert mean_ci([0.3]) == {"mean": 0.3, "std": 0.0, "ci95": None, "values": [0.3]}


def test_table_mean_and_ci_over_seeds():
    """sft [0.2, 0.4]: mean 0.3, s = 0.141421, ci95 = 12.7062 * 0.141421 / sqrt(2) = 1.27062 -> "30.0 ± 127.1";
    dpo [0.4, 0.4]: s = 0 -> "40.0 ± 0.0"; rpo in one seed of two: no interval, n=1."""
    seeds = [{"results": {"sft": {"pass@1": 0.2}, "dpo": {"pass@1": 0.4}, "rpo": {"pass@1": 0.5}}},
             {"results": {"sft": {"pass@1": 0.4}, "dpo": {"pass@1": 0.4}}}]
    table = aggregate(seeds)
    assert table["sft"]["pass@1"]["mean"] == pytest.approx(0.3)
    assert table["sft"]["pass@1"]["std"] == pytest.approx(0.1414213, abs=1e-6)
    assert table["sft"]["pass@1"]["ci95"] == pytest.approx(1.27062, abs=1e-4)
    assert table["dpo"]["pass@1"]["ci95"] == 0.0 and table["rpo"]["pass@1"]["ci95"] is None
    text = format_table(table)
    assert text.splitlines()[0] == "| method | pass@1 (mean ± 95 % CI) |"
    assert "| sft | 30.0 ± 127.1 |" in text and "| dpo | 40.0 ± 0.0 |" in text and "| rpo | 50.0 (n=1) |" in text


def test_table_of_one_seed_shows_values_only():
    text = format_table(aggregate([{"results": {"sft": {"pass@1": 0.2, "sampled_pass@10": 0.5}}}]))
    assert text.splitlines() == ["| method | pass@1 | sampled_pass@10 |", "|---|---|---|", "| sft | 20.0 | 50.0 |"]


# --------------------------------------------------------------------------------------------------
# report.md, report.html, plots


def test_write_report_writes_every_file(demo_dir):
    d, paths, _ = demo_dir
    assert set(paths) == {"report.md", "report.html", "pairs.html", "pass_at_1.png", "training_curves.png"}
    assert all(p.parent == d and p.is_file() for p in paths.values())
    for name in ("pass_at_1.png", "training_curves.png"):
        data = paths[name].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert not list(d.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_markdown_report_numbers(demo_dir):
    md = demo_dir[1]["report.md"].read_text()
    assert "| sft | 20.0 |" in md and "| dpo | 40.0 |" in md and "±" not in md  # one seed: no interval
    assert "| 0 | 2 | 1 | 3 |" in md  # pairs: seed, focused, codeflow, total
    assert "| focused status: ok | 2 |" in md and "| codeflow filters: judge | 0 |" in md
    assert "| train:dpo | 2.0 |" in md and "Total wall time: 12.5 s." in md
    assert "| 0 | focused | 2 | 1 | 2 |" in md and "| 0 | codeflow | 1 | 1 | 0 |" in md  # the label audit
    assert "![greedy pass@1 per method](pass_at_1.png)" in md and "(pairs.html)" in md


def test_html_report_is_self_contained_with_the_same_numbers(demo_dir):
    d, paths, _ = demo_dir
    page = paths["report.html"].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<script" not in page
    assert "<link" not in page and "@import" not in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(x) for x in images] == [paths["pass_at_1.png"].read_bytes(),
                                                     paths["training_curves.png"].read_bytes()]
    assert '<a href="pairs.html">' in page
    md_cells = {c.strip() for line in paths["report.md"].read_text().splitlines() if line.startswith("| ")
                for c in line.strip("|").split(" | ")}
    html_cells = {html.unescape(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", page)}
    assert md_cells - {"---"} <= html_cells


def test_several_seeds_without_data(tmp_path):
    """Two seeds, no pair or metrics file: CI header, stage means, pairs.html says so, no curves (stale one removed)."""
    (tmp_path / "training_curves.png").write_bytes(PNG_MAGIC)
    skipped = [{**_seed_result(s, 0.2 * (s + 1), 0.4), "pairs": {"focused": 0, "codeflow": 0, "total": 0},
                "training_skipped": "no preference pairs"} for s in (0, 1)]
    paths = write_report(tmp_path, {"preset": "mini", "seeds": skipped, "wall_seconds": 3.0})
    assert "training_curves.png" not in paths and not (tmp_path / "training_curves.png").exists()
    md = paths["report.md"].read_text()
    assert "| sft | 30.0 ± 127.1 |" in md and "95 % CI" in md
    assert "| tasks | 1.0 | 0.5 | 1.5 |" in md  # stage, mean over seeds, each seed
    assert "No plot `training_curves.png`: no training metrics" in md
    assert "Seed 1: training skipped: no preference pairs." in md
    assert paths["pass_at_1.png"].read_bytes().startswith(PNG_MAGIC)
    assert "No preference pairs to show" in paths["pairs.html"].read_text()


# --------------------------------------------------------------------------------------------------
# pairs.html


def test_viewer_token_weights_are_the_weights_modules(demo_dir, tokenizer):
    d, paths, pairs = demo_dir
    page = paths["pairs.html"].read_text()
    weights = json.loads(re.search(r'<script type="application/json" id="weights">(.*?)</script>', page, re.S)
                         .group(1).replace("<\\/", "</"))
    assert set(weights) == {"s0-p0", "s0-p1", "s0-p2"}
    for i, pair in enumerate(pairs):
        for scheme, options in (("focused", {"w_focused": 3.0}), ("target", {}), ("dpo", {})):
            (ex,) = compute_weighted_examples([pair], tokenizer, scheme, **options)
            for side in ("chosen", "rejected"):
                assert weights[f"s0-p{i}"][scheme][side] == ex[f"{side}_weights"]
                pre = _pre(page, f"s0-p{i}", side)
                indices = [int(k) for k in re.findall(r'<span class="tok[^"]*" data-i="(\d+)">', pre)]
                assert indices == list(range(len(ex[f"{side}_weights"])))  # one span per weighted token
                # the spans and gaps spell the completion, then the end-of-turn token
                assert html.unescape(re.sub(r"<[^>]+>", "", pre)) == getattr(pair, f"{side}_text") + "</s>"
    focused = weights["s0-p0"]["focused"]
    assert 3.0 in focused["chosen"] and {0.0, 3.0} <= set(focused["rejected"])  # mid w=3, rejected suffix 0
    assert '<option selected>focused</option>' in page and "<option>target</option>" in page


def test_viewer_escapes_code(demo_dir):
    page = demo_dir[1]["pairs.html"].read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 2  # the weights JSON and the scheme switch


def test_focused_pair_shows_pass_matrix_and_pagerank(demo_dir):
    section = _sections(demo_dir[1]["pairs.html"].read_text())["s0-p0"]
    assert "focused · task toy/1" in section and "data/pairs.jsonl line 1" in section
    cells = re.findall(r'<td class="(pass|fail)"', section)
    assert cells == ["fail", "pass", "fail", "pass", "pass", "fail"]  # programs x tests, row by row
    assert "<th>p1 chosen</th><td>0.75</td><td>1</td>" in section and "<th>p0 rejected</th><td>0.25</td>" in section
    assert "<td>0.5</td><td>0.375</td><td>0.125</td>" in section and "t0 (gt)" in section


def test_codeflow_pair_shows_debugging_history(demo_dir):
    section = _sections(demo_dir[1]["pairs.html"].read_text())["s0-p2"]
    assert "codeflow · task toy/cf" in section and "chosen: iteration 2" in section
    assert "iteration 0 (rejected): failed (WrongAnswer)" in section and "FAILED assert_0: AssertionError" in section
    assert "iteration 1: format error no_code" in section and "no &lt;file&gt; block" in section
    assert "iteration 2 (chosen): passed" in section and html.escape(CF_PASS) in section
    assert "pass matrix" not in section.lower()


def test_viewer_without_tokenizer_shows_plain_code(demo_dir, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(demo_dir[0], d, ignore=shutil.ignore_patterns("models"))
    page = pairs_html(d, {"seeds": [{"seed": 0}], "config": {"schemes": ["dpo"]}})
    assert "no tokenizer at" in page and 'class="tok' not in page
    assert html.escape(CHOSEN, quote=False) in page


def test_pick_pairs_is_deterministic_and_keeps_both_pipelines():
    items = ([ShownPair(0, i, None, "focused", None) for i in range(20)]
             + [ShownPair(0, 20 + i, None, "codeflow", None) for i in range(2)])
    picked = pick_pairs(items, 5)
    assert [s.index for s in picked] == [s.index for s in pick_pairs(list(reversed(items)), 5)]
    assert len(picked) == 5 and sum(s.pipeline == "codeflow" for s in picked) == 2
    assert [s.index for s in picked] == sorted(s.index for s in picked)
    assert len(pick_pairs(items, 50)) == 22


def test_import_is_light():
    code = ("import sys, focalpo.toyworld.report; "
            "print(sorted(m for m in ('matplotlib', 'transformers', 'torch', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
