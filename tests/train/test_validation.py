"""Validation during `focalpo train`: a held-out split by token hash or an eval file, `eval_` rows in
metrics.jsonl (the loss, the pair metrics, and for localised pairs the margin over the localised tokens),
and the best checkpoint's model kept.

Run: .venv/bin/python -m pytest tests/train/test_validation.py -q
"""

from __future__ import annotations

import random

import pytest
from train_helpers import PAIRS

from focalpo.cli import main
from focalpo.localize import localize_pair
from focalpo.pairs import write_pairs
from focalpo.train.data import split_eval
from focalpo.train.output import read_metrics


def _examples(n: int) -> list[dict]:
    return [{"prompt_input_ids": [i], "chosen_input_ids": [i, 1], "rejected_input_ids": [i, 2]} for i in range(n)]


def test_the_split_depends_on_the_tokens_only():
    examples = _examples(400)
    train, held = split_eval(examples, 0.1)
    assert 20 < len(held) < 60 and len(train) + len(held) == 400
    shuffled = examples[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(map(str, split_eval(shuffled, 0.1)[1])) == sorted(map(str, held))  # not the order
    assert {str(e) for e in split_eval(examples, 0.2)[1]} > {str(e) for e in held}  # nested as the share grows


@pytest.fixture(scope="module")
def localized_pairs(tmp_path_factory):
    """The 8 pairs, LCS-localised (so they carry D+ / D- spans), twice with other prompts: 16 pairs."""
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    pairs = [localize_pair(p + extra, c, r, method="lcs") for extra in ("", "# again\n") for p, c, r in PAIRS]
    write_pairs(path, pairs)
    return path


def test_eval_rows_localized_margin_and_best_checkpoint(model_dir, localized_pairs, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", str(model_dir), "--data", str(localized_pairs), "--output", str(out),
                 "--eval-fraction", "0.3", "--eval-steps", "2", "--best-metric", "eval_localized/margins",
                 "--per-device-batch-size", "2", "--max-steps", "4", "--learning-rate", "5e-3", "--no-progress",
                 "save_steps=2", "training_args.eval_on_start=true"]) == 0
    rows = read_metrics(out / "metrics.jsonl")
    evals = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in evals] == [0, 2, 4]
    start = evals[0]  # the policy is the reference: every margin is 0, the loss log 2
    assert start["eval_loss"] == pytest.approx(0.693147, abs=1e-5)
    assert start["eval_rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert start["eval_localized/margins"] == pytest.approx(0.0, abs=1e-6)
    assert all(r["eval_localized/margins"] != pytest.approx(0.0, abs=1e-6) for r in evals[1:])
    assert all(0.0 <= r["eval_localized/accuracies"] <= 1.0 for r in evals)
    best = max(evals[1:], key=lambda r: r["eval_localized/margins"])
    assert f"checkpoint-{best['step']}" in capsys.readouterr().out  # the CLI names the best checkpoint


def test_eval_data_file_and_its_errors(model_dir, localized_pairs, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--model", str(model_dir), "--data", str(localized_pairs), "--per-device-batch-size", "2",
              "--max-steps", "2", "--no-progress", "save_steps=2"]
    assert main([*common, "--output", str(out), "--eval-data", str(localized_pairs), "--eval-steps", "1"]) == 0
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl") if "eval_loss" in r] == [1, 2]
    assert main([*common, "--output", str(tmp_path / "b"), "--eval-data", str(localized_pairs),
                 "--eval-fraction", "0.1"]) == 2
    assert "give either eval_data or eval_fraction" in capsys.readouterr().err
    assert main([*common, "--output", str(tmp_path / "c"), "--best-metric", "eval_loss"]) == 2
    assert "needs validation data" in capsys.readouterr().err
