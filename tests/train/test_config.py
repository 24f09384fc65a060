"""Tests of focalpo.train.config (the TrainConfig recipes in configs/) and of the shipped accelerate configs.

The generic loader (precedence, round trip, errors) is tested in tests/test_config.py.
Run: .venv/bin/python -m pytest tests/train/test_config.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from focalpo.config import load_config
from focalpo.train.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_target_dpo_recipe_has_the_papers_numbers():
    cfg = load_config(TrainConfig, CONFIGS / "target_dpo.yaml")
    assert (cfg.scheme, cfg.beta, cfg.alpha, cfg.learning_rate) == ("target-rpo", 0.1, 1.0, 1e-5)
    assert (cfg.lr_scheduler_type, cfg.warmup_ratio, cfg.max_length, cfg.global_batch_size) == ("cosine", 0.03, 2048, 128)
    assert cfg.report_to == ["tensorboard"]


def test_focused_dpo_recipe():
    cfg = load_config(TrainConfig, CONFIGS / "focused_dpo.yaml")
    assert cfg.scheme == "focused" and cfg.scheme_options["w_focused"] == 2.0


@pytest.mark.parametrize("name,kind", [("zero3.yaml", "DEEPSPEED"), ("fsdp.yaml", "FSDP"), ("cpu_2proc.yaml", "MULTI_GPU")])
def test_accelerate_configs_parse_with_accelerates_loader(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    cfg = load_config_from_file(str(CONFIGS / "accelerate" / name))
    assert isinstance(cfg, ClusterConfig)
    assert cfg.distributed_type.value == kind
    if kind == "DEEPSPEED":
        assert cfg.deepspeed_config["zero_stage"] == 3 and cfg.mixed_precision == "bf16"
    if kind == "FSDP":
        assert cfg.fsdp_config["fsdp_version"] == 2 and cfg.num_processes == 8


def test_fsdp_config_builds_accelerates_plugin(monkeypatch):
    """What `accelerate launch` does with the file: environment variables, then the FSDP plugin."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / "accelerate" / "fsdp.yaml"), "x.py"])
    args, _, _ = _validate_launch_command(args)
    for key, value in prepare_multi_gpu_env(args).items():
        monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert str(plugin.state_dict_type).endswith("FULL_STATE_DICT")
