"""Tests of `focalpo.report.render`: the pass@k table, markdown and HTML of report blocks, escaping.

Run: .venv/bin/python -m pytest -q tests/report/test_render.py
"""

from __future__ import annotations

import json
import re

import pytest

from focalpo.report.render import format_table, json_in_script, markdown, render_html, report_blocks
from focalpo.report.stats import aggregate


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


def test_blocks_in_markdown_and_html_escape_and_link():
    demo = {"preset": "a|b", "seeds": [{"seed": 0, "results": {"sft": {"pass@1": 0.25}}, "pairs": {"total": 0},
                                        "training_skipped": "<none>", "stage_seconds": {"tasks": 1.0}}]}
    blocks = report_blocks(demo, viewer=None)
    md, page = markdown(blocks), render_html(blocks)
    assert "| sft | 25.0 |" in md and "No pair viewer: no preference pairs." in md
    assert "Seed 0: training skipped: <none>." in md and "&lt;none&gt;" in page and "<none>" not in page
    assert "<code>a|b</code>" in page and "<script" not in page
    assert '<a href="pairs.html">' in render_html(report_blocks(demo))


def test_json_in_script_cannot_close_the_element():
    value = {"code": "</script><!-- x"}
    text = json_in_script(value)
    assert "</" not in text and "<!--" not in text and json.loads(text) == value
    assert not re.search(r"</script", text, re.I)


def test_paired_differences_table_in_points():
    from focalpo.report.stats import paired_table

    seeds = [{"seed": 0, "results": {"sft": {"pass@1": 0.25}, "dpo": {"pass@1": 0.75}}, "pairs": {"total": 1},
              "per_task": {"sft": {"a": 0, "b": 1, "c": 0, "d": 0}, "dpo": {"a": 1, "b": 1, "c": 1, "d": 0}},
              "stage_seconds": {}}]
    demo = {"seeds": seeds, "paired": paired_table(seeds, resamples=200)}
    md = markdown(report_blocks(demo, viewer=None))
    assert "## Paired differences" in md
    row = next(line for line in md.splitlines() if line.startswith("| dpo | sft |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "+50.0" and cells[4] == "0.5" and cells[5] == "2 / 0" and cells[6] == "4"  # p = 2 * (1/2)^2
    assert "## Paired differences" not in markdown(report_blocks({**demo, "paired": {}}, viewer=None))


def test_a_pipeline_without_pairs_is_a_warning_at_the_top():
    seeds = [{"seed": s, "results": {"sft": {"pass@1": 0.5}}, "pairs": {"focused": 3, "codeflow": c, "total": 3 + c},
              "stage_seconds": {}} for s, c in ((0, 0), (1, 2))]
    lines = markdown(report_blocks({"seeds": seeds}, viewer=None)).splitlines()
    warnings = [i for i, line in enumerate(lines) if line.startswith("WARNING")]
    assert len(warnings) == 1 and warnings[0] < lines.index(next(x for x in lines if x.startswith("| method")))
    assert "`focalpo codeflow` gave no preference pair in seed(s) 0" in lines[warnings[0]]
