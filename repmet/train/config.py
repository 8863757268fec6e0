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
    dataset: Literal["omniglot", "flowers102", "oxford_pets", "stanford_dogs", "folder"] = "omniglot"
    root: Optional[str] = None  # None: $REPMET_DATA, ../shared/data next to a checkout, ~/.cache/repmet/data
    image_size: int = 28
    resize: Optional[int] = None  # shorter side before the centre crop; None: image_size / 0.875
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    download: bool = True
    train_classes: Optional[list[int]] = None  # [first, last], 1-based inclusive; None: all classes
    fewshot_classes: Optional[list[int]] = None  # [first, last] held out for few-shot evaluation
    cache_views: list[str] = field(default_factory=lambda: ["center", "flip"])  # training views of cached features


@dataclass
class ModelConfig:
    name: str = "conv4"
    in_channels: int = 1
    hidden_channels: int = 64
    out_channels: int = 64
    pretrained: bool = False
    weights: Optional[str] = None  # a local state dict instead of downloaded ImageNet weights
    frozen: bool = False  # no gradients and no BatchNorm statistics updates in the backbone
    cache_features: bool = False  # with frozen: compute backbone features once and train the head on them


@dataclass
class HeadConfig:
    hidden_dim: int = 1024
    embedding_dim: int = 256
    dropout: float = 0.0  # on the backbone features, during training


@dataclass
class BatchConfig:
    classes: int = 12  # M: classes (RepMet) or clusters (Magnet) per batch
    per_class: int = 4  # D: images per class or per cluster


@dataclass
class RepMetConfig:
    reps_per_class: int = 1  # K
    sigma: float = 0.5
    alpha: float = 1.0  # margin
    ce_weight: float = 1.0
    margin_weight: float = 1.0


@dataclass
class MagnetConfig:
    clusters_per_class: int = 1  # K
    alpha: float = 1.0
    refresh_every: int = 100  # steps between k-means refreshes of the clusters
    eval_neighbors: int = 8  # L: nearest clusters used for the soft assignment


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
    steps_per_epoch: int = 100  # batch methods (repmet, magnet)
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
    fewshot_shots: list[int] = field(default_factory=lambda: [1, 5])  # batch methods: shots of the few-shot episodes


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    method: Literal["protonets", "repmet", "magnet"] = "protonets"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    repmet: RepMetConfig = field(default_factory=RepMetConfig)
    magnet: MagnetConfig = field(default_factory=MagnetConfig)
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
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{source}: key {key!r} must be a list, got {type(value).__name__} {value!r}")
        (inner,) = typing.get_args(hint)
        return [_check_type(item, inner, f"{key}[{i}]", source) for i, item in enumerate(value)]
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
