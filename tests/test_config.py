"""Tests of focalpo.config, the generic loader: precedence defaults < YAML < flags < overrides, dump/load
round trip, YAML errors naming file:line: field, override errors (exercised on TrainConfig).

Run: .venv/bin/python -m pytest tests/test_config.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from focalpo.config import ConfigError, dump_config, load_config
from focalpo.train.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

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
