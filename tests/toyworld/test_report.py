"""Tests of the demo report (`focalpo.toyworld.report.write_report`) on a small fake demo directory in the real
formats: data/pairs.jsonl (LCS-localised, conversational), runs/<pipeline>/records.jsonl and
models/<scheme>/metrics.jsonl. The numbers, tables and plots are tested in tests/report/ (test_stats.py,
test_render.py, test_plots.py), the pair viewer in tests/report/test_viewer.py. No model is trained.

Run: .venv/bin/pytest -q tests/toyworld/test_report.py
"""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys

import pytest

from focalpo.localize import localize_pair
from focalpo.pairs import write_pairs
from focalpo.toyworld.report import write_report

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
            "results": {"sft": {"pass@1": sft}, "dpo@focused": {"pass@1": dpo}},
            "continuation": {"chosen_mid": 0.5, "rejected_mid": 0.0, "pairs": 2, "n": 1, "tests": "reference",
                             "chosen_better": 1, "rejected_better": 0},
            "training": {"dpo@focused": {"tokens/weighted_fraction": 1.0, "tokens/mean_weight": 1.0, "loss": 0.6,
                                         "validation": {"eval_loss": 0.7, "eval_localized/margins": 0.125,
                                                        "eval_localized/accuracies": 0.5}}},
            "stage_seconds": {"tasks": 0.5 + seed, "train:dpo@focused": 2.0},
            "audit": {"focused": {"pairs": 2, "chosen_correct": 1, "rejected_incorrect": 2},
                      "codeflow": {"pairs": 1, "chosen_correct": 1, "rejected_incorrect": 0}}}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """One seed: 2 focused pairs and 1 CodeFlow pair, records, metrics of dpo and focused; the demo's view stage
    would have written pairs.html (not run here)."""
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
    for offset, scheme in enumerate(("dpo@focused", "focused")):
        _metrics(d / "models" / scheme / "metrics.jsonl", 0.05 * offset)
    (d / "models" / "focused" / "train_config.yaml").write_text("scheme: focused\nscheme_options:\n  w_focused: 3.0\n")
    arms = [["dpo@focused", "dpo", "focused"], ["focused", "focused", "focused"], ["target", "target", "codeflow"]]
    demo = {"preset": "mini", "config": {"arms": arms}, "seeds": [_seed_result(0, 0.2, 0.4)],
            "wall_seconds": 12.5}
    paths = write_report(d, demo)
    return d, paths, conv


# --------------------------------------------------------------------------------------------------
# report.md, report.html, plots


def test_write_report_writes_every_file(demo_dir):
    d, paths, _ = demo_dir
    # pairs.html is the view stage's (data/pairs.jsonl exists): write_report leaves it alone
    assert set(paths) == {"report.md", "report.html", "pass_at_1.png", "training_curves.png"}
    assert not (d / "pairs.html").exists()
    assert all(p.parent == d and p.is_file() for p in paths.values())
    for name in ("pass_at_1.png", "training_curves.png"):
        data = paths[name].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert not list(d.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_markdown_report_numbers(demo_dir):
    md = demo_dir[1]["report.md"].read_text()
    assert "| sft | 20.0 |" in md and "| dpo@focused | 40.0 |" in md and "±" not in md  # one seed: no interval
    assert ("`dpo@focused`, `focused` on the focused pairs; `target` on the codeflow pairs") in md
    assert "## Continuation test (Focused-DPO)" in md and "| 0 | 2 | 50.0 | 0.0 | 1 / 0 |" in md
    assert "## Validation pairs: localised-token margin" in md and "| dpo@focused | 0.125 | 0.500 | - | 0.700 | 1 |" in md
    assert "| 0 | 2 | 1 | 3 |" in md  # pairs: seed, focused, codeflow, total
    assert "| focused status: ok | 2 |" in md and "| codeflow filters: judge | 0 |" in md
    assert "| train:dpo@focused | 2.0 |" in md and "Total wall time: 12.5 s." in md
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
    paths = write_report(tmp_path, {"preset": "mini", "config": {"share_sft": True}, "seeds": skipped,
                                    "wall_seconds": 3.0})
    assert "training_curves.png" not in paths and not (tmp_path / "training_curves.png").exists()
    md = paths["report.md"].read_text()
    assert "2 seed(s) of one policy and teacher (the first seed's SFT runs)" in md
    assert "| sft | 30.0 ± 127.1 |" in md and "95 % CI" in md
    assert "| tasks | 1.0 | 0.5 | 1.5 |" in md  # stage, mean over seeds, each seed
    assert "No plot `training_curves.png`: no training metrics" in md
    assert "Seed 1: training skipped: no preference pairs." in md
    assert paths["pass_at_1.png"].read_bytes().startswith(PNG_MAGIC)
    index = paths["pairs.html"].read_text()  # several seeds: an index of the seeds' viewers, here none
    assert "seed 0: no preference pairs" in index and "seed 1: no preference pairs" in index


def test_one_seed_without_pairs_gets_a_stand_in_viewer(tmp_path):
    paths = write_report(tmp_path, {"preset": "mini", "seeds": [{**_seed_result(0, 0.2, 0.4), "training_skipped": "x"}]})
    assert "No preference pairs to show" in paths["pairs.html"].read_text()


def test_several_seeds_index_links_each_seed_viewer(tmp_path):
    (tmp_path / "seed-1" / "data").mkdir(parents=True)
    (tmp_path / "seed-1" / "data" / "pairs.jsonl").write_text("{}\n")
    paths = write_report(tmp_path, {"preset": "mini", "seeds": [_seed_result(0, 0.2, 0.4), _seed_result(1, 0.2, 0.4)]})
    index = paths["pairs.html"].read_text()
    assert '<a href="seed-1/pairs.html">seed 1</a>' in index and "seed 0: no preference pairs" in index


def test_import_is_light():
    code = ("import sys, focalpo.toyworld.report; "
            "print(sorted(m for m in ('matplotlib', 'transformers', 'torch', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
