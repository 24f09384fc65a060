"""DeepSpeed ZeRO-3 really runs: 2 CPU processes (DeepSpeed's CPU accelerator, gloo), the shipped
configs/accelerate/zero3.yaml with only the process count and precision changed for a CPU.

- the training arguments are built before the model, so ZeRO-3 partitions the weights as they load;
- `focalpo train` under ZeRO-3 (reference precomputed with the partitioned policy, chunked log-probs)
  logs the losses, gradient norms and rewards of the same run under DDP, and saves the same model.

Needs `deepspeed` (in the dev extras; skipped without it). DeepSpeed compiles a small C++ op on first
use (~1 min once per machine, cached in ~/.cache/torch_extensions).
Run: .venv/bin/python -m pytest tests/train/test_deepspeed.py -q
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

from focalpo.train.output import read_metrics

pytest.importorskip("deepspeed")

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).parent / "accelerate"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "DS_ACCELERATOR": "cpu"}


@pytest.fixture(scope="module")
def zero3_cpu(tmp_path_factory) -> Path:
    """configs/accelerate/zero3.yaml for 2 processes without GPUs: float32 (no bf16 on this CPU path)."""
    cfg = yaml.safe_load((ROOT / "configs/accelerate/zero3.yaml").read_text())
    cfg.update(num_processes=2, mixed_precision="no")
    path = tmp_path_factory.mktemp("accelerate") / "zero3_cpu.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def launch(config: Path, port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ACCELERATE), "launch", "--config_file", str(config), "--main_process_port", str(port),
                           *args], env=ENV, capture_output=True, text=True, timeout=540)


def test_zero3_partitions_the_weights_while_they_load(zero3_cpu, model_dir, tmp_path):
    run = launch(zero3_cpu, 29531, str(ROOT / "tests/train/zero3_probe.py"), str(model_dir), str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr[-3000:]
    for r in (json.loads((tmp_path / "out" / f"rank{i}.json").read_text()) for i in (0, 1)):
        assert r["processes"] == 2 and r["partitioned"]
        assert r["local_numel"] < r["full_numel"] / 1.5  # each rank holds its shard, not the model


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch.distributed has no gloo backend")
def test_zero3_trains_as_ddp_does(zero3_cpu, model_dir, examples_file, tmp_path):
    # 8 pairs, 2 per device; the precompute batch of 3 gives the ranks 2 and 1 forwards of their own
    # (4 examples each), so the short share runs a filler forward that ZeRO-3's weight gathering needs
    common = ["-m", "focalpo.cli", "train", "--model", str(model_dir), "--data", str(examples_file),
              "--max-steps", "3", "--learning-rate", "1e-3", "--per-device-batch-size", "2", "--no-progress",
              "precompute_batch_size=3", "logps_chunk_tokens=5"]
    runs = {}
    for name, config, port in (("zero3", zero3_cpu, 29532), ("ddp", ROOT / "configs/accelerate/cpu_2proc.yaml", 29533)):
        out = tmp_path / name
        run = launch(config, port, *common, "--output", str(out), f"ref_cache_dir={tmp_path / ('cache-' + name)}")
        assert run.returncode == 0, run.stderr[-3000:]
        assert "chunked log-probs are not exact" not in run.stderr
        runs[name] = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in runs["zero3"]] == [1, 2, 3]
    for a, b in zip(runs["zero3"], runs["ddp"]):
        for key in ("loss", "grad_norm", "rewards/chosen", "rewards/rejected", "logps/chosen"):
            assert a[key] == pytest.approx(b[key], abs=1e-5, rel=1e-4), (a["step"], key)
    assert runs["zero3"][-1]["loss"] != pytest.approx(runs["zero3"][0]["loss"], abs=1e-3)  # it trained

    from safetensors.torch import load_file

    z3, ddp = load_file(tmp_path / "zero3" / "model.safetensors"), load_file(tmp_path / "ddp" / "model.safetensors")
    assert z3.keys() == ddp.keys()
    for k in z3:  # the consolidated ZeRO-3 model equals the DDP one
        torch.testing.assert_close(z3[k], ddp[k], atol=1e-5, rtol=1e-4, msg=k)
