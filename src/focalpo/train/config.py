"""`TrainConfig`, the typed options of `focalpo train`, loadable from YAML with key=value overrides.

    cfg = load_config(TrainConfig, "configs/target_dpo.yaml", ["beta=0.2", "scheme_options.w_focused=3"],
                      flags={"model": "path/to/model", "data": "pairs.jsonl", "output": "runs/a"})
    dump_config(cfg, "runs/a/train_config.yaml")      # the resolved config, written beside artefacts

Precedence, lowest first: dataclass defaults < YAML recipe < command-line flags < key=value
overrides. Values are coerced to the field's annotated type (so `learning_rate=1e-5` is a float
although YAML 1.1 reads `1e-5` as a string); a dotted key sets one entry of a dict field. Errors
name the file and line (YAML) or the override, and the field.

The loader (`load_config`, `dump_config`) is generic over dataclasses; only `TrainConfig` is
specific to training.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml


@dataclass
class TrainConfig:
    """Options of one `focalpo train` run (see README / `focalpo train --help`)."""

    model: str = ""  # policy: a local HF model directory (or hub id when online)
    data: str = ""  # pairs JSONL (focalpo.pairs) or pre-weighted examples JSONL (focalpo.weights output)
    output: str = ""  # run directory: checkpoints, metrics.jsonl, final model, train_config.yaml
    ref_model: str | None = None  # reference policy; default: the initial policy itself
    tokenizer: str | None = None  # default: the policy's directory
    scheme: str = "dpo"  # weight scheme of focalpo.weights (dpo, rpo, focused, target, target-rpo, ...)
    scheme_options: dict = field(default_factory=dict)  # extra keyword options of the scheme
    loss_type: str = "sigmoid"  # key of focalpo.train.losses.PREFERENCE_LOSSES
    beta: float = 0.1
    alpha: float = 1.0  # weight of the NLL term, used when the scheme asks for it (rpo, target-rpo)
    reference: str = "precompute"  # "precompute": Σ w log π_ref once, cached; "live": forward a frozen model
    ref_cache_dir: str | None = None  # default: $FOCALPO_CACHE/ref_logps or ~/.cache/focalpo/ref_logps
    precompute_batch_size: int | None = None  # default: per_device_batch_size
    max_length: int | None = None  # prompt+completion tokens; longer sequences are cut at the end
    max_prompt_length: int | None = None  # passed to the weight scheme
    dtype: str = "float32"  # dtype the models are loaded in (float32, bfloat16, float16)
    bf16: bool = False  # autocast to bfloat16 (mixed precision)
    gradient_checkpointing: bool = False
    lora: bool = False  # train a LoRA adapter; the reference is then the adapter-disabled model
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = None  # default: all linear layers but the LM head
    learning_rate: float = 1e-6
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.0  # share of the optimisation steps spent warming up
    weight_decay: float = 0.0
    num_train_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_batch_size: int = 1  # pairs per device per micro-batch
    gradient_accumulation_steps: int = 1
    global_batch_size: int | None = None  # pairs per optimiser step; sets gradient_accumulation_steps
    logging_steps: int = 1
    save_steps: int = 500
    save_total_limit: int | None = None
    report_to: list[str] = field(default_factory=lambda: ["none"])  # e.g. [tensorboard], [wandb]
    seed: int = 0
    disable_dropout: bool = True  # as TRL: the policy and reference forwards must be deterministic
    progress: bool = True  # tqdm progress bar
    overwrite: bool = False  # allow a non-empty output directory (drops its checkpoints and metrics)
    resume: bool = False  # continue from the last checkpoint in `output`
    training_args: dict = field(default_factory=dict)  # extra transformers.TrainingArguments fields


# --------------------------------------------------------------------------------------------------
# Generic loader


class ConfigError(ValueError):
    """A config value or key that cannot be used; the message names where it came from."""


def _strip_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), True
    return tp, False


def coerce(tp, value: Any, where: str) -> Any:
    """`value` as an instance of the annotated type `tp` (int, float, bool, str, list[...], dict, Optional)."""
    tp, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("none", "null", "~")):
        if optional:
            return None
        raise ConfigError(f"{where}: may not be null")
    origin = typing.get_origin(tp) or tp
    try:
        if origin is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
                return value.strip().lower() in ("true", "yes", "1", "on")
            raise ValueError
        if origin is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if origin is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if origin is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is list:
            (item_tp,) = typing.get_args(tp) or (Any,)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()] if not value.startswith("[") else yaml.safe_load(value)
            if not isinstance(value, list):
                raise ValueError
            return [v if item_tp is Any else coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        if origin is dict:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except ConfigError:
        raise
    except (TypeError, ValueError):
        name = getattr(tp, "__name__", str(tp))
        raise ConfigError(f"{where}: expected {name}, got {value!r}") from None
    return value


def _fields(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown(key: str, known: Sequence[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(f"{where}: unknown field {key!r}{hint}")


def _yaml_mapping(path: Path) -> list[tuple[str, Any, int]]:
    """(key, value, 1-based line) of a YAML file's top-level mapping."""
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return []
    if not isinstance(data, dict) or node is None or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: expected a mapping of config fields at the top level")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    return [(str(k), v, lines.get(str(k), 0)) for k, v in data.items()]


def _set(values: dict, types_: dict, key: str, raw: Any, where: str, *, from_text: bool) -> None:
    top, _, sub = key.partition(".")
    if top not in types_:
        raise _unknown(top, list(types_), where)
    tp = types_[top]
    if sub:
        if (typing.get_origin(_strip_optional(tp)[0]) or _strip_optional(tp)[0]) is not dict:
            raise ConfigError(f"{where}: field {top!r} is not a mapping, cannot set {key!r}")
        values[top] = dict(values.get(top) or {})
        values[top][sub] = yaml.safe_load(raw) if from_text and isinstance(raw, str) else raw
        return
    values[top] = coerce(tp, raw, f"{where}: field {top!r}")


def load_config(
    cls,
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    flags: Mapping[str, Any] | None = None,
):
    """An instance of dataclass `cls` from defaults < YAML file `path` < `flags` (None values skipped) < `overrides`."""
    types_ = _fields(cls)
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        for key, raw, line in _yaml_mapping(path):
            _set(values, types_, key, raw, f"{path}:{line}", from_text=False)
    for key, raw in (flags or {}).items():
        if raw is not None:
            _set(values, types_, key, raw, f"flag --{key.replace('_', '-')}", from_text=False)
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value")
        _set(values, types_, key.strip(), raw.strip(), f"override {item!r}", from_text=True)
    return cls(**values)


def config_dict(cfg) -> dict[str, Any]:
    """The config as plain YAML-able values."""
    return dataclasses.asdict(cfg)


def dump_config(cfg, path: str | Path) -> Path:
    """Write the resolved config as YAML (readable back with `load_config`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))
    return path
