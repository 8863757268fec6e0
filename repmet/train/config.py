"""The experiment schema: one YAML file is one experiment, parsed into typed dataclasses.

Unknown keys and wrong types are errors that name the key and the file. Command-line
overrides (``--set train.lr=0.01``) use the same dotted keys and the same checks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from repmet.errors import UserError


@dataclass
class DataConfig:
    dataset: Literal["omniglot"] = "omniglot"
    root: Optional[str] = None  # None: $REPMET_DATA, ../shared/data next to a checkout, ~/.cache/repmet/data
    image_size: int = 28
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    download: bool = True


@dataclass
class ModelConfig:
    name: str = "conv4"
    in_channels: int = 1
    hidden_channels: int = 64
    out_channels: int = 64


@dataclass
class LossConfig:
    name: str = "prototypical"
    distance: Literal["sqeuclidean", "cosine"] = "sqeuclidean"


@dataclass
class TrainConfig:
    way: int = 60
    shot: int = 5
    query: int = 5
    episodes_per_epoch: int = 100
    epochs: int = 100
    episodes_per_step: int = 1  # episodes whose gradients are averaged per optimizer step (per process)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_decay_every: int = 2000  # episodes
    lr_decay_factor: float = 0.5
    device: str = "auto"  # auto: cuda when present, else cpu
    channels_last: bool = True
    keep: Literal["best", "last"] = "best"  # which checkpoint stands for the run (last when val is in train)


@dataclass
class EvalConfig:
    way: int = 5
    shot: int = 1
    query: int = 15
    val_episodes: int = 100
    test_episodes: int = 1000
    seed: int = 0


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment and apply ``key.sub=value`` overrides."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a mapping of keys, got {type(raw).__name__}")
    for override in overrides:
        _apply_override(raw, override)
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> ExperimentConfig:
    return _build(ExperimentConfig, raw, prefix="", source=source)


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise UserError(f"override {override!r} must look like section.key=value")
    value = yaml.safe_load(text) if text else ""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {override!r}: {part!r} is not a section")
    node[parts[-1]] = value


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    where = f"section {prefix[:-1]!r}" if prefix else "the top level"
    if not isinstance(raw, dict):
        raise UserError(f"{source}: {where} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise UserError(
            f"{source}: unknown key {prefix + unknown[0]!r} in {where}; known keys: {', '.join(sorted(names))}"
        )
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{prefix}{name}.", source)
        else:
            values[name] = _check_type(value, hint, f"{prefix}{name}", source)
    return cls(**values)


def _check_type(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(repr(c) for c in typing.get_args(hint))
            raise UserError(f"{source}: key {key!r} is {value!r}; expected one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_type(value, inner, key, source)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # PyYAML reads 1e-3 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise UserError(f"{source}: key {key!r} must be {hint.__name__}, got {type(value).__name__} {value!r}")
    return value
