"""Two processes (`accelerate launch`, gloo on CPU) give the losses of one process on the same global batch.

2 processes x 2 pairs = 1 process x 4 pairs: same pairs per step (accelerate shards each global batch
of the seeded sampler), DDP averages the gradients, so losses, gradient norms and rewards agree. The
reference log-probs are precomputed sharded over the two ranks and gathered. (The `nll` metric is a
mean of per-rank token means, as TRL's `sft` term, so it may differ slightly; it is not compared.)

Run: .venv/bin/python -m pytest tests/train/test_distributed.py -q      (~25 s on 2 cores)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from focalpo.train.output import read_metrics
from train_helpers import one_rank_group

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).parent / "accelerate"


def test_two_processes_equal_one_process_on_the_same_global_batch(model_dir, ref_model_dir, examples_file, tmp_path):
    if not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed has no gloo backend")
    common = ["--model", str(model_dir), "--ref-model", str(ref_model_dir), "--data", str(examples_file),
              "--max-steps", "3", "--learning-rate", "1e-3", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    two = subprocess.run(
        [str(ACCELERATE), "launch", "--config_file", str(ROOT / "configs/accelerate/cpu_2proc.yaml"),
         "--main_process_port", "29517", "-m", "focalpo.cli", "train", *common, "--output", str(tmp_path / "two"),
         "--per-device-batch-size", "2", f"ref_cache_dir={tmp_path / 'cache2'}"],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("trained 3 steps") == 1  # printed by the main process only
    one = subprocess.run(
        [sys.executable, "-m", "focalpo.cli", "train", *common, "--output", str(tmp_path / "one"),
         "--per-device-batch-size", "4", f"ref_cache_dir={tmp_path / 'cache1'}"],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert one.returncode == 0, one.stderr[-3000:]

    a, b = read_metrics(tmp_path / "two" / "metrics.jsonl"), read_metrics(tmp_path / "one" / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3]
    for x, y in zip(a, b):
        for key in ("loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen"):
            assert x[key] == pytest.approx(y[key], abs=1e-5, rel=1e-5), (x["step"], key)
    assert a[0]["loss"] != pytest.approx(0.6931, abs=1e-3)  # the reference is not the policy
    (c2,), (c1,) = (tmp_path / "cache2").glob("*.pt"), (tmp_path / "cache1").glob("*.pt")
    assert c2.name == c1.name  # same key: the cache does not depend on the number of processes
    assert torch.allclose(torch.load(c2), torch.load(c1), atol=1e-5)


def test_train_takes_its_process_group_down(model_dir, examples_file, tmp_path):
    """A launched process that exits with its group alive can abort in the group's destructor after its
    work is saved (gloo: "terminate called without an active exception", 2 launches of 10 on the CI machine), failing
    the launch: `focalpo train` ends with a barrier and `destroy_process_group` (so does `sft`: test_sft.py)."""
    from focalpo.cli import main

    with one_rank_group(tmp_path / "store"):
        assert main(["train", "--model", str(model_dir), "--data", str(examples_file), "--max-steps", "1",
                     "--no-progress", "--output", str(tmp_path / "out"), f"ref_cache_dir={tmp_path / 'cache'}"]) == 0
        assert not torch.distributed.is_initialized()
