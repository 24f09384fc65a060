"""Typed configs: every command's options are a dataclass, loadable from YAML with key=value overrides.

    cfg = load_config(TrainConfig, "configs/target_dpo.yaml", ["beta=0.2", "scheme_options.w_focused=3"],
                      flags={"model": "path/to/model", "data": "pairs.jsonl", "output": "runs/a"})
    dump_config(cfg, "runs/a/train_config.yaml")      # the resolved config, written beside artefacts

Precedence, lowest first: dataclass defaults < YAML recipe < command-line flags < key=value
overrides. Values are coerced to the field's annotated type (so `learning_rate=1e-5` is a float
although YAML 1.1 reads `1e-5` as a string); a dotted key sets one entry of a dict field. Errors
name the file and line (YAML) or the override, and the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from focalpo.io import atomic_path


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
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))
    return path
