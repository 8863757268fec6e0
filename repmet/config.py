"""The experiment schema: one YAML file is one experiment, parsed into typed dataclasses.

Unknown keys and wrong types are errors that name the key and the file. Command-line
overrides (``--set train.lr=0.01``) use the same dotted keys and the same checks.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from repmet.errors import UserError


def at_least(minimum: float) -> dict:
    """Field metadata: the value must be >= ``minimum``."""
    return {"min": minimum}


def positive() -> dict:
    """Field metadata: the value must be > 0."""
    return {"min_exclusive": 0}


def between(low: float, high: float, low_exclusive: bool = False) -> dict:
    return {"min_exclusive" if low_exclusive else "min": low, "max": high}


@dataclass
class DataConfig:
    # "detection": the detector's own section names its dataset
    dataset: Literal["omniglot", "flowers102", "oxford_pets", "stanford_dogs", "folder", "detection"] = "omniglot"
    root: Optional[str] = None  # None: $REPMET_DATA, ../shared/data next to a checkout, ~/.cache/repmet/data
    image_size: int = field(default=28, metadata=at_least(1))
    resize: Optional[int] = field(default=None, metadata=at_least(1))  # shorter side before the centre crop; None: image_size / 0.875
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    # > 0: the val split is this fraction of each class's train-split images (seeded, the same
    # everywhere), held out of training; for data that comes with train and test only
    val_fraction: float = field(default=0.0, metadata=between(0.0, 0.5))
    download: bool = True
    train_classes: Optional[list[int]] = None  # [first, last], 1-based inclusive; None: all classes
    fewshot_classes: Optional[list[int]] = None  # [first, last] held out for few-shot evaluation
    cache_views: list[str] = field(default_factory=lambda: ["center", "flip"])  # training views of cached features
    # more cached training views: seeded RandomResizedCrop + mirror of each training image (random0, random1, ...)
    cache_random_views: int = field(default=0, metadata=at_least(0))
    # the mean/std of [0, 1] RGB images: "imagenet" (torchvision's), or "backbone": what the
    # pretrained weights of model.name were trained with (EfficientNet-Lite: (x - 127) / 128).
    # Stored configs without the key keep "imagenet", as they were trained.
    normalization: Literal["imagenet", "backbone"] = "imagenet"


@dataclass
class ModelConfig:
    name: str = "conv4"
    in_channels: int = field(default=1, metadata=at_least(1))
    hidden_channels: int = field(default=64, metadata=at_least(1))
    out_channels: int = field(default=64, metadata=at_least(1))
    pretrained: bool = False
    weights: Optional[str] = None  # a local state dict instead of downloaded ImageNet weights
    frozen: bool = False  # no gradients and no BatchNorm statistics updates in the backbone
    cache_features: bool = False  # with frozen: compute backbone features once and train the head on them
    # fine-tune only the top N blocks (EfficientNet-Lite0: of 16; ResNets: residual blocks) and the
    # final feature layer; the rest and its BatchNorm statistics stay frozen. With cache_features the
    # frozen bottom's activation maps are cached. None: the whole backbone as model.frozen says.
    trainable_blocks: Optional[int] = field(default=None, metadata=at_least(1))


@dataclass
class HeadConfig:
    # mlp: FC-ReLU-FC-L2 (the papers'); residual: the L2-normalised features plus a learned
    # correction that starts at zero (keeps what transfers to unseen classes; repmet.models.embedding_head)
    kind: Literal["mlp", "residual"] = "mlp"
    hidden_dim: int = field(default=1024, metadata=at_least(1))
    embedding_dim: int = field(default=256, metadata=at_least(1))
    dropout: float = field(default=0.0, metadata=between(0.0, 0.99))  # on the backbone features, during training


@dataclass
class BatchConfig:
    classes: int = field(default=12, metadata=at_least(1))  # M: classes (RepMet) or clusters (Magnet) per batch
    per_class: int = field(default=4, metadata=at_least(1))  # D: images per class or per cluster


@dataclass
class LossConfig:
    name: str = "prototypical"
    distance: Literal["sqeuclidean", "cosine"] = "sqeuclidean"


@dataclass
class TrainConfig:
    way: int = field(default=60, metadata=at_least(1))
    shot: int = field(default=5, metadata=at_least(1))
    query: int = field(default=5, metadata=at_least(1))
    episodes_per_epoch: int = field(default=100, metadata=at_least(1))
    epochs: int = field(default=100, metadata=at_least(1))
    episodes_per_step: int = field(default=1, metadata=at_least(1))  # episodes averaged per optimizer step (per process)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = field(default=1e-3, metadata=positive())
    weight_decay: float = field(default=0.0, metadata=at_least(0.0))
    lr_decay_every: int = field(default=2000, metadata=at_least(1))  # episodes (episodic) or steps (batch methods)
    lr_decay_factor: float = field(default=0.5, metadata=between(0.0, 1.0, low_exclusive=True))
    steps_per_epoch: int = field(default=100, metadata=at_least(1))  # batch methods (repmet, magnet)
    device: str = "auto"  # auto: cuda when present, else cpu
    channels_last: bool = True
    keep: Literal["best", "last"] = "best"  # which checkpoint stands for the run (last when val is in train)
    backbone_lr_scale: float = field(default=1.0, metadata=positive())  # the backbone's lr = lr x this


@dataclass
class EvalConfig:
    way: int = field(default=5, metadata=at_least(1))
    shot: int = field(default=1, metadata=at_least(1))
    query: int = field(default=15, metadata=at_least(1))
    val_episodes: int = field(default=100, metadata=at_least(1))
    test_episodes: int = field(default=1000, metadata=at_least(1))
    seed: int = 0
    fewshot_shots: list[int] = field(default_factory=lambda: [1, 5])  # batch methods: shots of the few-shot episodes


@dataclass
class ExperimentConfig:
    """The sections every method shares, plus ``sections``: the sections that methods own
    (``repmet:``, ``magnet:``), each parsed with its method's dataclass and read as
    ``config.repmet`` like the others."""

    name: str = "experiment"
    method: str = "protonets"  # a name in the method registry (repmet.methods)
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sections: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"the config has no section {name!r}")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "sections"}
        out.update({name: dataclasses.asdict(section) for name, section in self.sections.items()})
        return out


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases: ``*name`` lets 600 bytes of nested anchors expand to
    gigabytes (a "billion laughs"), and a config never needs one."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"line {mark.line + 1}, column {mark.column + 1}: YAML aliases (*name) are not "
                                 f"allowed in a config; write the value out")
        return super().compose_node(parent, index)


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages (a value may be huge)."""
    brief = reprlib.Repr()
    brief.maxstring = brief.maxother = limit
    brief.maxlist = brief.maxdict = 6
    text = brief.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_config_file(path: str | Path, overrides: typing.Sequence[str] = ()) -> dict[str, Any]:
    """The YAML mapping in ``path`` with ``key.sub=value`` overrides applied, unchecked: the
    method registry checks it (:func:`repmet.methods.config_loading.load_config`), since the
    sections a config may hold depend on its method, and this module imports no method."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=ConfigLoader)
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a mapping of keys, got {type(raw).__name__}")
    for override in overrides:
        _apply_override(raw, override)
    return raw


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise UserError(f"override {override!r} must look like section.key=value")
    value = yaml.load(text, Loader=ConfigLoader) if text else ""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {override!r}: {part!r} is not a section")
    node[parts[-1]] = value


def build_section(cls: type, raw: Any, prefix: str, source: str) -> Any:
    where = f"section {prefix[:-1]!r}" if prefix else "the top level"
    if not isinstance(raw, dict):
        raise UserError(f"{source}: {where} must be a mapping, got {shown(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "sections"}
    names = set(fields)
    unknown = sorted(set(raw) - names)
    if unknown:
        raise UserError(
            f"{source}: unknown key {prefix + unknown[0]!r} in {where}; known keys: {', '.join(sorted(names))}"
        )
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = build_section(hint, value, f"{prefix}{name}.", source)
        else:
            values[name] = _check_type(value, hint, f"{prefix}{name}", source)
            _check_range(values[name], fields[name].metadata, f"{prefix}{name}", source)
    return cls(**values)


def _check_range(value: Any, bounds: Any, key: str, source: str) -> None:
    """Finite numbers within the field's bounds (its ``metadata``); ``None`` passes."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{source}: key {key!r} is {value}; it must be a finite number")
    limits = []
    if "min" in bounds and value < bounds["min"]:
        limits.append(f"at least {bounds['min']}")
    if "min_exclusive" in bounds and value <= bounds["min_exclusive"]:
        limits.append(f"greater than {bounds['min_exclusive']}")
    if "max" in bounds and value > bounds["max"]:
        limits.append(f"at most {bounds['max']}")
    if limits:
        raise UserError(f"{source}: key {key!r} is {value}; it must be {' and '.join(limits)}")


def _check_type(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(repr(c) for c in typing.get_args(hint))
            raise UserError(f"{source}: key {key!r} is {shown(value)}; expected one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_type(value, inner, key, source)
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{source}: key {key!r} must be a list, got {type(value).__name__} {shown(value)}")
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
        raise UserError(f"{source}: key {key!r} must be {hint.__name__}, got {type(value).__name__} {shown(value)}")
    return value
