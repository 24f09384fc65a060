"""Tests of focalpo.train.config (YAML recipes + key=value overrides) and of the shipped configs/.

Run: .venv/bin/python -m pytest tests/train/test_config.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from focalpo.config import ConfigError, dump_config, load_config
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


def test_precedence_defaults_recipe_flags_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("beta: 0.2\nalpha: 0.5\nlearning_rate: 1e-5\nscheme_options:\n  w_focused: 2\n")
    cfg = load_config(
        TrainConfig, recipe, ["alpha=0.25", "scheme_options.w_focused=3", "max_length=none", "report_to=tensorboard,wandb"],
        flags={"beta": 0.3, "alpha": 0.9, "model": "m", "scheme": None},
    )
    assert cfg.learning_rate == 1e-5 and isinstance(cfg.learning_rate, float)  # YAML 1.1 reads 1e-5 as a string
    assert cfg.beta == 0.3  # flag over recipe
    assert cfg.alpha == 0.25  # override over flag
    assert cfg.scheme == "dpo"  # a None flag (not given) leaves the default
    assert cfg.scheme_options == {"w_focused": 3}
    assert cfg.max_length is None and cfg.report_to == ["tensorboard", "wandb"]
    assert cfg.lora_r == TrainConfig().lora_r


def test_dump_then_load_round_trips(tmp_path):
    cfg = load_config(TrainConfig, CONFIGS / "target_dpo.yaml", ["model=/m", "training_args.optim=adamw_torch"])
    assert load_config(TrainConfig, dump_config(cfg, tmp_path / "c.yaml")) == cfg


def test_yaml_errors_name_file_line_and_field(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("beta: 0.1\n\nlearning_rat: 1e-5\n")
    with pytest.raises(ConfigError, match=r"r\.yaml:3: unknown field 'learning_rat' \(did you mean learning_rate\?\)"):
        load_config(TrainConfig, recipe)
    recipe.write_text("beta: 0.1\nmax_steps: many\n")
    with pytest.raises(ConfigError, match=r"r\.yaml:2: field 'max_steps': expected int, got 'many'"):
        load_config(TrainConfig, recipe)
    recipe.write_text("- beta\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(TrainConfig, recipe)
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(TrainConfig, tmp_path / "missing.yaml")


def test_override_errors():
    with pytest.raises(ConfigError, match=r"override 'bta=1': unknown field 'bta' \(did you mean beta\?\)"):
        load_config(TrainConfig, None, ["bta=1"])
    with pytest.raises(ConfigError, match=r"override 'beta': expected key=value"):
        load_config(TrainConfig, None, ["beta"])
    with pytest.raises(ConfigError, match=r"override 'lora=maybe': field 'lora': expected bool"):
        load_config(TrainConfig, None, ["lora=maybe"])
    with pytest.raises(ConfigError, match=r"field 'beta' is not a mapping"):
        load_config(TrainConfig, None, ["beta.x=1"])
    with pytest.raises(ConfigError, match=r"field 'max_steps': expected int, got 2.5"):
        load_config(TrainConfig, None, [], flags={"max_steps": 2.5})


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
