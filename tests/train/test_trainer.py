"""End-to-end tests of `focalpo train` on a tiny Llama: artefacts, refusals, reference modes, LoRA,
weights, tensorboard, the weight schemes of focalpo.weights.

Run: .venv/bin/python -m pytest tests/train/test_trainer.py -q
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from train_helpers import PAIRS, simple_examples, write_jsonl

from focalpo.cli import main
from focalpo.config import load_config
from focalpo.train.config import TrainConfig
from focalpo.train.output import read_metrics

LOG2 = math.log(2.0)
REQUIRED = ("step", "loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "nll",
            "tokens/weighted_fraction")


def run_cli(model_dir, data, out, *extra) -> int:
    return main(["train", "--model", str(model_dir), "--data", str(data), "--output", str(out),
                 "--per-device-batch-size", "2", "--learning-rate", "1e-3", "--no-progress", *extra])


def test_cli_trains_and_writes_artefacts(model_dir, examples_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(model_dir, examples_file, out, "--max-steps", "3", "save_steps=2") == 0
    assert "trained 3 steps" in capsys.readouterr().out
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(k in r for r in records for k in REQUIRED)
    first = records[0]
    # policy == reference at step 1: every reward is 0 and the loss is log 2
    assert first["loss"] == pytest.approx(LOG2, abs=1e-6)
    # (zero up to float32 rounding: the reference was computed once, in other batches and padding)
    assert [first[k] for k in ("rewards/chosen", "rewards/rejected", "rewards/margins")] == pytest.approx([0, 0, 0], abs=1e-5)
    assert first["tokens/weighted_fraction"] == 1.0
    assert records[2]["rewards/margins"] != 0.0  # training moved the policy away from the reference

    cfg = load_config(TrainConfig, out / "train_config.yaml")
    assert cfg.max_steps == 3 and cfg.model == str(model_dir) and cfg.save_steps == 2
    assert (out / "checkpoint-2" / "train_config.yaml").read_text() == (out / "train_config.yaml").read_text()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    trained = AutoModelForCausalLM.from_pretrained(out)
    initial = AutoModelForCausalLM.from_pretrained(model_dir)
    assert not torch.equal(trained.lm_head.weight, initial.lm_head.weight)
    assert AutoTokenizer.from_pretrained(out).pad_token == "<pad>"


def test_refuses_non_empty_output_without_overwrite(model_dir, examples_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(model_dir, examples_file, out, "--max-steps", "2", "save_steps=1") == 0
    assert run_cli(model_dir, examples_file, out, "--max-steps", "1") == 2
    err = capsys.readouterr().err
    assert f"{out}: output directory is not empty" in err and "--overwrite" in err and "--resume" in err
    assert run_cli(model_dir, examples_file, out, "--max-steps", "1", "--overwrite") == 0
    # the old checkpoint-1 and checkpoint-2 were dropped; Trainer saves the final step
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1]


def test_user_errors_are_one_line(model_dir, examples_file, tmp_path, capsys):
    assert run_cli(model_dir, tmp_path / "nope.jsonl", tmp_path / "a") == 2
    assert "nope.jsonl: data file not found" in capsys.readouterr().err
    assert run_cli(model_dir, examples_file, tmp_path / "b", "loss_type=kto") == 2
    assert "field 'loss_type': unknown 'kto'" in capsys.readouterr().err
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**simple_examples_first(), "chosen_weights": [1.0]}])
    assert run_cli(model_dir, bad, tmp_path / "c") == 2
    assert f"{bad}:1: field 'chosen_weights' has 1 values for" in capsys.readouterr().err


def simple_examples_first():
    from train_helpers import make_tokenizer

    ex = simple_examples(make_tokenizer())[0]
    return {k: v for k, v in ex.items() if k != "id"}


def losses(out) -> list[float]:
    return [r["loss"] for r in read_metrics(Path(out) / "metrics.jsonl")]


def test_precomputed_reference_equals_live_reference_and_is_cached(model_dir, ref_model_dir, examples_file, tmp_path):
    cache = tmp_path / "cache"
    common = ["--max-steps", "3", "--ref-model", str(ref_model_dir), f"ref_cache_dir={cache}"]
    assert run_cli(model_dir, examples_file, tmp_path / "pre", *common, "--reference", "precompute") == 0
    assert run_cli(model_dir, examples_file, tmp_path / "live", *common, "--reference", "live") == 0
    pre, live = losses(tmp_path / "pre"), losses(tmp_path / "live")
    assert pre[0] != pytest.approx(LOG2, abs=1e-3)  # the explicit reference differs from the policy
    assert pre == pytest.approx(live, abs=1e-6)
    (cached,) = cache.glob("*.pt")
    stamp = cached.stat().st_mtime_ns
    assert run_cli(model_dir, examples_file, tmp_path / "again", *common, "--reference", "precompute") == 0
    assert list(cache.glob("*.pt")) == [cached] and cached.stat().st_mtime_ns == stamp  # read, not rewritten
    assert losses(tmp_path / "again") == pre
    # another reference (the policy itself) is another cache entry
    assert run_cli(model_dir, examples_file, tmp_path / "self", "--max-steps", "1", f"ref_cache_dir={cache}") == 0
    assert len(list(cache.glob("*.pt"))) == 2


def test_lora_trains_an_adapter_against_the_disabled_adapter(model_dir, examples_file, tmp_path):
    for mode, extra in (("live", []), ("precompute", []), ("gc", ["gradient_checkpointing=true"])):
        out = tmp_path / mode
        assert run_cli(model_dir, examples_file, out, "--max-steps", "3", "--lora", "--reference",
                       "precompute" if mode == "gc" else mode, "lora_r=4", "learning_rate=1e-2", *extra) == 0
    live, pre, gc = losses(tmp_path / "live"), losses(tmp_path / "precompute"), losses(tmp_path / "gc")
    assert live[0] == pytest.approx(LOG2, abs=1e-6)  # LoRA starts with B = 0: policy == reference
    assert live == pytest.approx(pre, abs=1e-6)
    assert gc == pytest.approx(pre, abs=1e-6)  # gradient checkpointing changes memory, not numbers
    assert live[2] != pytest.approx(LOG2, abs=1e-4)
    assert (tmp_path / "live" / "adapter_config.json").is_file()
    assert not (tmp_path / "live" / "model.safetensors").exists()

    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "live")
    assert model.peft_config["default"].r == 4


def test_weights_reach_the_loss(model_dir, tokenizer, tmp_path):
    """Chosen weighted 2, rejected scored only on its last 2 tokens: the logged weighted fraction and mean
    weight are the hand counts."""
    examples = simple_examples(tokenizer, weigh=lambda side, ids: [2.0] * len(ids) if side == "chosen"
                               else [0.0] * (len(ids) - 2) + [1.0, 1.0])
    data = write_jsonl(tmp_path / "w.jsonl", examples)
    assert run_cli(model_dir, data, tmp_path / "run", "--max-steps", "1", "--per-device-batch-size", "8") == 0
    n_chosen = sum(len(e["chosen_input_ids"]) for e in examples)
    n_rejected = sum(len(e["rejected_input_ids"]) for e in examples)
    expected = (n_chosen + 2 * len(examples)) / (n_chosen + n_rejected)
    (rec,) = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert rec["tokens/weighted_fraction"] == pytest.approx(expected, abs=1e-7)
    assert rec["tokens/mean_weight"] == pytest.approx((2 * n_chosen + 2 * len(examples)) / (n_chosen + n_rejected),
                                                      abs=1e-7)


def test_tensorboard_when_asked(model_dir, examples_file, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    assert run_cli(model_dir, examples_file, out, "--max-steps", "2", "--report-to", "tensorboard") == 0
    events = list(out.rglob("events.out.tfevents.*"))
    assert events

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"train/loss", "train/rewards/margins", "train/tokens/weighted_fraction"} <= set(acc.Tags()["scalars"])


# --------------------------------------------------------------------------------------------------
# Through focalpo.pairs + focalpo.weights


def write_pairs_file(tmp_path) -> Path:
    from focalpo.pairs import PreferencePair, write_pairs

    path = tmp_path / "pairs.jsonl"
    write_pairs(path, [PreferencePair(p, c, r) for p, c, r in PAIRS])
    return path


def test_pairs_file_with_rpo_scheme_adds_alpha_nll(model_dir, tmp_path):
    pytest.importorskip("focalpo.weights")
    pairs = write_pairs_file(tmp_path)
    assert run_cli(model_dir, pairs, tmp_path / "dpo", "--max-steps", "1", "--scheme", "dpo") == 0
    assert run_cli(model_dir, pairs, tmp_path / "rpo", "--max-steps", "1", "--scheme", "rpo", "--alpha", "0.5") == 0
    (dpo,), (rpo,) = read_metrics(tmp_path / "dpo" / "metrics.jsonl"), read_metrics(tmp_path / "rpo" / "metrics.jsonl")
    assert dpo["loss"] == pytest.approx(LOG2, abs=1e-6)
    assert rpo["loss"] == pytest.approx(LOG2 + 0.5 * rpo["nll"], abs=1e-5)
    assert json.loads((tmp_path / "rpo" / "metrics.jsonl").read_text().splitlines()[0])["nll"] > 1.0


# --------------------------------------------------------------------------------------------------
# Invariants of the training loop


def test_gradient_accumulation_invariant(model_dir, ref_model_dir, examples_file, tmp_path):
    """4 pairs x 1 micro-batch = 2 x 2 = 1 x 4: same losses and gradient norms, step by step."""
    runs = {}
    for bs, ga in ((4, 1), (2, 2), (1, 4)):
        out = tmp_path / f"bs{bs}"
        assert run_cli(model_dir, examples_file, out, "--max-steps", "2", "--ref-model", str(ref_model_dir),
                       "--per-device-batch-size", str(bs), f"gradient_accumulation_steps={ga}") == 0
        runs[bs] = read_metrics(out / "metrics.jsonl")
    for bs in (2, 1):
        for a, b in zip(runs[bs], runs[4]):
            for key in ("loss", "grad_norm", "rewards/margins"):
                assert a[key] == pytest.approx(b[key], abs=1e-5), (bs, a["step"], key)


def test_gradient_checkpointing_and_global_batch_size(model_dir, examples_file, tmp_path):
    assert run_cli(model_dir, examples_file, tmp_path / "plain", "--max-steps", "2") == 0
    assert run_cli(model_dir, examples_file, tmp_path / "gc", "--max-steps", "2", "gradient_checkpointing=true",
                   "global_batch_size=2") == 0  # 2 pairs per step = per-device 2 x 1 process x 1 accumulation
    assert losses(tmp_path / "gc") == pytest.approx(losses(tmp_path / "plain"), abs=1e-6)
    assert run_cli(model_dir, examples_file, tmp_path / "bad", "global_batch_size=3") == 2


def test_bf16_autocast_close_to_float32(model_dir, examples_file, tmp_path):
    assert run_cli(model_dir, examples_file, tmp_path / "fp32", "--max-steps", "2") == 0
    assert run_cli(model_dir, examples_file, tmp_path / "bf16", "--max-steps", "2", "bf16=true") == 0
    a, b = read_metrics(tmp_path / "fp32" / "metrics.jsonl"), read_metrics(tmp_path / "bf16" / "metrics.jsonl")
    assert b[0]["loss"] == pytest.approx(LOG2, abs=1e-6)  # precomputed under the same autocast: r = 0 exactly
    assert b[1]["loss"] == pytest.approx(a[1]["loss"], abs=2e-2)
    assert b[0]["nll"] == pytest.approx(a[0]["nll"], abs=5e-2)
