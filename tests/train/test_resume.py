"""Kill during training, then `--resume`: the losses that follow equal those of an uninterrupted run, from
the newest complete checkpoint (a save cut short is skipped), with a torn metrics line cut off; input
errors leave nothing behind. A slow test SIGKILLs `focalpo train` at random moments.

Run: .venv/bin/python -m pytest tests/train/test_resume.py -q
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from transformers import TrainerCallback

from focalpo.cli import main
from focalpo.config import load_config
from focalpo.train.config import TrainConfig
from focalpo.train.output import read_metrics
from focalpo.train.run import train


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


def _killed_run(model_dir, examples_file, out):
    """A run killed at the end of step 4: checkpoint-2 saved, metrics for steps 1-3 (step 3 past it)."""
    with pytest.raises(Killed):
        train(config(model_dir, examples_file, out), callbacks=[KillAtStep(4)])
    return out


@pytest.fixture(scope="module")
def reference_metrics(model_dir, examples_file, tmp_path_factory):
    return read_metrics(train(config(model_dir, examples_file, tmp_path_factory.mktemp("whole") / "run")).metrics)


def _same_as(resumed, reference):
    assert [r["step"] for r in resumed] == [r["step"] for r in reference]
    for a, b in zip(resumed, reference):
        for key in ("loss", "rewards/margins", "learning_rate", "grad_norm"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["step"], key)


def test_a_checkpoint_cut_short_is_skipped_and_the_metrics_tail_cut(model_dir, examples_file, tmp_path,
                                                                    reference_metrics, capsys):
    out = _killed_run(model_dir, examples_file, tmp_path / "run")
    # a kill inside the save of checkpoint-4: weights written, trainer_state.json not yet
    shutil.copytree(out / "checkpoint-2", out / "checkpoint-4")
    (out / "checkpoint-4" / "trainer_state.json").unlink()
    with open(out / "metrics.jsonl", "a") as f:  # and a metrics line torn by the kill
        f.write('{"step": 4, "epoch": 1.0, "lo')
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["train", "--output", str(out), "--resume"]) == 0  # the run's own train_config.yaml
    said = [str(w.message) for w in seen]
    assert any("checkpoint-4: skipped, no trainer_state.json" in m for m in said), said
    assert any("metrics.jsonl:4: dropping a torn last record" in m for m in said), said
    _same_as(read_metrics(out / "metrics.jsonl"), reference_metrics)


def test_last_complete_checkpoint_reasons(tmp_path):
    from focalpo.train.output import last_complete_checkpoint

    def ckpt(step, state="{}", weights=True):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if state is not None:
            (d / "trainer_state.json").write_text(state)
        if weights:
            (d / "model.safetensors").write_bytes(b"w")
        return d

    good = ckpt(2)
    ckpt(4, state='{"global_step": 4, "log')  # torn
    ckpt(6, weights=False)
    ckpt(8, state=None)
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint
    with pytest.warns(UserWarning) as seen:
        assert last_complete_checkpoint(tmp_path) == str(good)
    assert [str(w.message).split(": skipped, ")[1].split(" (")[0] for w in seen] == [
        "no trainer_state.json", "no model weights", "trainer_state.json is torn"]
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_resume_before_the_config_was_written_says_so(tmp_path, capsys):
    out = tmp_path / "never-started"
    out.mkdir()
    assert main(["train", "--output", str(out), "--resume"]) == 2
    assert "train_config.yaml: no such file: the run stopped before it started training" in capsys.readouterr().err


def test_bad_input_leaves_no_trace_and_the_corrected_run_starts(model_dir, examples_file, tmp_path, capsys):
    out = tmp_path / "run"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_input_ids": [1], "chosen_input_ids": "x"}\n')
    args = ["train", "--model", str(model_dir), "--output", str(out), "per_device_batch_size=2", "max_steps=1",
            "progress=false"]
    assert main([*args, "--data", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
    assert not out.exists() or not any(p.name != "train_config.yaml" for p in out.iterdir())
    assert main([*args, "--data", str(examples_file)]) == 0  # no --overwrite needed


@pytest.mark.parametrize("flag", ["--model", "--ref-model"])
def test_a_missing_model_directory_is_named(examples_file, model_dir, tmp_path, capsys, flag):
    missing = tmp_path / "no-such-model"
    model = str(missing) if flag == "--model" else str(model_dir)
    extra = [flag, str(missing)] if flag == "--ref-model" else []
    assert main(["train", "--model", model, *extra, "--data", str(examples_file), "--output",
                 str(tmp_path / "o")]) == 2
    assert f"{flag} {missing}: no such directory" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_byte_identical(model_dir, examples_file, tmp_path):
    """`focalpo train` in a subprocess, SIGKILLed at random moments (saves every step, so many kills land
    inside a checkpoint save), resumed until done: the final weights and metrics equal an uninterrupted
    run's byte for byte. Trials: $FOCALPO_KILL_TRIALS (default 8)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    exe = str(Path(sys.executable).parent / "focalpo")
    def command(out):
        return [exe, "train", "--model", str(model_dir), "--data", str(examples_file), "--output", str(out),
                "per_device_batch_size=2", "max_steps=12", "save_steps=1", "learning_rate=1e-3",
                "warmup_ratio=0.2", "progress=false", "save_total_limit=2"]
    env = {**os.environ, "FOCALPO_CACHE": str(tmp_path / "cache")}
    whole = tmp_path / "whole"
    subprocess.run(command(whole), check=True, env=env, capture_output=True)  # also fills the reference cache
    t0 = time.perf_counter()
    subprocess.run(command(tmp_path / "again"), check=True, env=env, capture_output=True)
    span = time.perf_counter() - t0  # a run as the killed ones go: start, cached reference, 12 steps, saves
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    rng = random.Random(0)
    cut_short = mid_run = 0
    for trial in range(int(os.environ.get("FOCALPO_KILL_TRIALS", "8"))):
        out = tmp_path / f"t{trial}"
        proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 1.0) * span)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        newest = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]), default=None)
        cut_short += newest is not None and not (newest / "trainer_state.json").is_file()
        mid_run += not (out / "model.safetensors").is_file()
        resume = [*command(out), "--resume"] if (out / "train_config.yaml").is_file() else command(out)
        subprocess.run(resume, check=True, env=env, capture_output=True)
        assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes(), trial
        assert (out / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes(), trial
    print(f"{mid_run} kills landed before the final save, {cut_short} of them inside a checkpoint save")
    # and two kills aimed inside the save of checkpoint-7: before its trainer_state.json, and halfway through it
    for how in ("before", "torn"):
        out = tmp_path / f"save-{how}"
        subprocess.run([sys.executable, "-c", KILL_IN_SAVE, how, "7", *command(out)[1:]], env=env, capture_output=True)
        assert (out / "checkpoint-7").is_dir() and not (out / "model.safetensors").exists(), how
        done = subprocess.run([*command(out), "--resume"], check=True, env=env, capture_output=True, text=True)
        assert "checkpoint-7: skipped" in done.stderr, how
        assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes(), how
        assert (out / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes(), how


# `python -c KILL_IN_SAVE before|torn STEP train ...`: focalpo's CLI, SIGKILLed by itself while writing the
# trainer_state.json of checkpoint-STEP (before any byte of it, or after half of it)
KILL_IN_SAVE = """
import os, signal, sys
from transformers.trainer_callback import TrainerState
how, step = sys.argv[1], int(sys.argv[2])
save = TrainerState.save_to_json
def dying(self, path):
    if self.global_step == step and f"checkpoint-{step}" in str(path):
        if how == "torn":
            save(self, path)
            data = open(path, "rb").read()
            open(path, "wb").write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return save(self, path)
TrainerState.save_to_json = dying
from focalpo.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_resume_without_the_reference_cache(model_dir, examples_file, tmp_path, lora):
    """The reference sums are computed once the policy is wrapped, which on resume is after the checkpoint
    loaded: a full fine-tune then holds trained weights and must not become its own reference; a LoRA
    policy's reference (the adapter disabled) is intact and is recomputed."""
    cache = tmp_path / "cache"
    extra = [f"ref_cache_dir={cache}", *(["lora=true", "lora_r=4"] if lora else [])]
    whole = read_metrics(train(config(model_dir, examples_file, tmp_path / "whole", *extra)).metrics)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        train(config(model_dir, examples_file, out, *extra), callbacks=[KillAtStep(3)])
    shutil.rmtree(cache)
    resumed = config(model_dir, examples_file, out, *extra, "resume=true")
    if lora:
        train(resumed)
        assert [r["loss"] for r in read_metrics(out / "metrics.jsonl")] == pytest.approx([r["loss"] for r in whole],
                                                                                          abs=1e-6)
    else:
        with pytest.raises(ValueError, match="reference log-probs are not in the cache .* holds the checkpoint's weights"):
            train(resumed)
