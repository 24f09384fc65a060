"""FSDP: what runs where.

- On CPU, accelerate 1.16 does not run FSDP (a FSDP config on a machine without GPUs becomes DDP), so
  here torch's FSDP2 (`fully_shard`) runs on 2 CPU processes (gloo) without accelerate: focalpo's
  chunked log-probs and gradients through the sharded model equal the full-logits path, and the
  reference precompute (equal forwards on every rank) equals one unsharded process.
- `focalpo train` refuses an FSDP launch that accelerate turned into something else.
- `accelerate launch` with configs/accelerate/fsdp.yaml: behind the `gpu` marker.

Run: .venv/bin/python -m pytest tests/train/test_fsdp.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from focalpo.train.collate import PreferenceCollator
from focalpo.train.output import read_metrics
from focalpo.train.reference import precompute_reference_logps

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch.distributed has no gloo backend")
def test_fsdp2_sharded_logps_gradients_and_reference_precompute(model_dir, examples_file, tmp_path):
    run = subprocess.run([str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29541",
                          str(ROOT / "tests/train/fsdp2_worker.py"), str(model_dir), str(examples_file), str(tmp_path)],
                         env=ENV, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    examples = [json.loads(line) for line in Path(examples_file).read_text().splitlines()][:7]
    expected = precompute_reference_logps(model, examples, PreferenceCollator(pad_token_id=model.config.pad_token_id),
                                          batch_size=7)
    for r in rows:
        assert r["sharded"] == "DTensor"  # the LM head's weight really is sharded
        assert r["max_rel_diff"] < 1e-5
        torch.testing.assert_close(torch.tensor(r["values"]), torch.tensor(expected), atol=1e-5, rtol=0)


def test_an_fsdp_launch_that_accelerate_did_not_honour_is_refused(model_dir, examples_file, tmp_path, monkeypatch, capsys):
    """Without GPUs accelerate makes an FSDP config a DDP (or single-process) run; training on as if
    sharded would hide a 8x memory difference, so `focalpo train` stops and says why."""
    from focalpo.cli import main

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    out = tmp_path / "run"
    assert main(["train", "--model", str(model_dir), "--data", str(examples_file), "--output", str(out),
                 "--max-steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "FSDP" in err and "accelerate" in err
    assert not (out / "checkpoint-1").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA GPUs")
def test_accelerate_fsdp_config_trains_on_gpus(model_dir, examples_file, tmp_path):
    """configs/accelerate/fsdp.yaml on every visible GPU, float32 (exactness): the losses of one process."""
    n = torch.cuda.device_count()
    cfg = yaml.safe_load((ROOT / "configs/accelerate/fsdp.yaml").read_text())
    cfg.update(num_processes=n, mixed_precision="no")
    config = tmp_path / "fsdp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    common = ["train", "--model", str(model_dir), "--data", str(examples_file), "--max-steps", "3",
              "--learning-rate", "1e-3", "--no-progress"]
    per_device = max(1, 8 // n)
    fsdp = subprocess.run([str(BIN / "accelerate"), "launch", "--config_file", str(config), "--main_process_port",
                           "29542", "-m", "focalpo.cli", *common, "--output", str(tmp_path / "fsdp"),
                           "--per-device-batch-size", str(per_device), f"ref_cache_dir={tmp_path / 'c1'}"],
                          env=ENV, capture_output=True, text=True, timeout=540)
    assert fsdp.returncode == 0, fsdp.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "focalpo.cli", *common, "--output", str(tmp_path / "one"),
                          "--per-device-batch-size", str(per_device * n), f"ref_cache_dir={tmp_path / 'c2'}"],
                         env={**ENV, "CUDA_VISIBLE_DEVICES": "0"}, capture_output=True, text=True, timeout=540)
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = read_metrics(tmp_path / "fsdp" / "metrics.jsonl"), read_metrics(tmp_path / "one" / "metrics.jsonl")
    assert [r["step"] for r in a] == [1, 2, 3]
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-4), x["step"]
    assert (tmp_path / "fsdp" / "model.safetensors").is_file()
