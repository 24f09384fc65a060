"""Tests of `focalpo.report.plots`: PNGs when there is data, (None, reason) when not.

Run: .venv/bin/python -m pytest -q tests/report/test_plots.py
"""

from __future__ import annotations

import json

from focalpo.report.plots import bar_labels, curve_series, plot_pass_at_1, plot_training_curves
from focalpo.report.stats import aggregate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pass_at_1_png_and_missing_metric():
    png, note = plot_pass_at_1(aggregate([{"results": {"sft": {"pass@1": 0.2}, "dpo": {"pass@1": 0.4}}},
                                          {"results": {"sft": {"pass@1": 0.3}, "dpo": {"pass@1": 0.5}}}]))
    assert png.startswith(PNG_MAGIC) and len(png) > 1000 and note == ""
    assert plot_pass_at_1(aggregate([{"results": {"sft": {"pass@10": 0.2}}}])) == (None, "no pass@1 result")


def test_bar_labels_carry_the_value_and_the_interval():
    table = aggregate([{"results": {"sft": {"pass@1": 0.2}, "dpo": {"pass@1": 0.4}}},
                       {"results": {"sft": {"pass@1": 0.4}, "dpo": {"pass@1": 0.4}}}])
    assert bar_labels([table["sft"]["pass@1"], table["dpo"]["pass@1"]]) == ["30.0 ± 127.1", "40.0 ± 0.0"]
    assert bar_labels(list(aggregate([{"results": {"sft": {"pass@1": 0.25}}}])["sft"].values())) == ["25.0"]
    png, _ = plot_pass_at_1(table, tasks=50)
    assert png.startswith(PNG_MAGIC)


def test_curve_series_names_coinciding_runs_together():
    rows = lambda *v: [{"step": i + 1, "loss": x, "rewards/margins": 2 * x} for i, x in enumerate(v)]  # noqa: E731
    runs = {"dpo": rows(0.7, 0.6), "target": rows(0.7, 0.6), "focused": rows(0.7, 0.5),
            "rpo": [{"step": 1, "loss": 0.7}]}
    series = curve_series(runs)
    assert set(series) == {"loss", "rewards/margins"}  # metrics nobody logged have no panel
    assert [label for label, _, _ in series["loss"]] == ["dpo = target", "focused", "rpo"]
    assert [label for label, _, _ in series["rewards/margins"]] == ["dpo = target", "focused"]
    assert series["loss"][1] == ("focused", [1, 2], [0.7, 0.5])


def test_training_curves_skip_summary_rows_and_missing_files(tmp_path):
    path = tmp_path / "models" / "dpo" / "metrics.jsonl"
    path.parent.mkdir(parents=True)
    rows = [{"step": s, "loss": 0.7 - 0.1 * s, "rewards/margins": 0.1 * s} for s in (1, 2)] + [{"train_loss": 0.6}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    missing = tmp_path / "models" / "rpo" / "metrics.jsonl"
    png, note = plot_training_curves({"dpo": path, "rpo": missing}, seed=3)
    assert png.startswith(PNG_MAGIC) and note == ""
    none, why = plot_training_curves({"rpo": missing})
    assert none is None and why.startswith("no training metrics in") and str(tmp_path / "models") in why


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, focalpo.report.plots, focalpo.report.render, focalpo.report.stats; "
            "print(sorted(m for m in ('matplotlib', 'transformers', 'torch', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
