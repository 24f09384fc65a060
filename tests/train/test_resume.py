"""Kill during training, then `--resume`: the losses that follow equal those of an uninterrupted run.

Run: .venv/bin/python -m pytest tests/train/test_resume.py -q
"""

from __future__ import annotations

import pytest
from transformers import TrainerCallback

from focalpo.cli import main
from focalpo.config import load_config
from focalpo.train.config import TrainConfig
from focalpo.train.run import read_metrics, train


class Killed(RuntimeError):
    pass


class KillAtStep(TrainerCallback):
    """Dies at the end of optimiser step `step`, before that step is logged or saved (like a SIGKILL)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


def config(model_dir, examples_file, out, *extra) -> TrainConfig:
    # 8 examples, 2 per step: 6 steps cross an epoch boundary (sampler reshuffle); warm-up + cosine
    # make every step's learning rate different.
    return load_config(TrainConfig, None, [
        f"model={model_dir}", f"data={examples_file}", f"output={out}", "per_device_batch_size=2",
        "max_steps=6", "save_steps=2", "learning_rate=1e-3", "warmup_ratio=0.2", "progress=false", *extra,
    ])


def test_resume_after_a_kill_equals_an_uninterrupted_run(model_dir, examples_file, tmp_path):
    whole = train(config(model_dir, examples_file, tmp_path / "whole"))
    reference = read_metrics(whole.metrics)
    assert [r["step"] for r in reference] == [1, 2, 3, 4, 5, 6]

    out = tmp_path / "killed"
    with pytest.raises(Killed):
        train(config(model_dir, examples_file, out), callbacks=[KillAtStep(4)])
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2, 3]  # step 3 is past the checkpoint
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]

    # without --resume the directory is refused; with it, training continues from checkpoint-2
    with pytest.raises(FileExistsError):
        train(config(model_dir, examples_file, out))
    assert main(["train", "--config", str(out / "train_config.yaml"), "--resume"]) == 0
    resumed = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(resumed, reference):
        for key in ("loss", "rewards/margins", "nll", "learning_rate", "grad_norm"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["step"], key)
    # the steps really differ (step 1 has learning rate 0 under warm-up, so step 2 still sees the initial policy)
    assert len({round(r["loss"], 5) for r in reference}) == 5
