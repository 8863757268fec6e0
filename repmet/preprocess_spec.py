"""The preprocessing a model expects, as data: written into every checkpoint and artifact, and
run by the runtime (``repmet.runtime.preprocess``). Standard library only."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# What metadata.json may name (its JSON Schema, repmet.artifact.schema, reads these).
COLORS: tuple[str, ...] = ("L", "RGB")
RESIZES: tuple[str, ...] = ("shorter_side", "exact")
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "lanczos", "bicubic")


@dataclass(frozen=True)
class PreprocessSpec:
    """``color``: "L" or "RGB". ``resize``: "shorter_side" (torchvision ``Resize(int)``) or
    "exact" (``resize_to`` x ``resize_to``). Then a centre crop of ``crop`` pixels, values
    scaled to [0, 1], ``invert`` (1 - x, Omniglot's bright strokes), ``(x - mean) / std``."""

    color: str
    resize: str
    resize_to: int
    interpolation: str
    crop: int
    invert: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.color not in COLORS or self.resize not in RESIZES or self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unsupported preprocessing {self}")
        channels = 1 if self.color == "L" else 3
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean/std need {channels} values for color {self.color}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessSpec":
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})


def detection_canvas_size(max_size: int) -> int:
    """The exported detector's square input: ``max_size`` rounded up to a multiple of 32 (the
    FPN's coarsest stride), large enough for any image resized to at most ``max_size``."""
    return int(math.ceil(max_size / 32) * 32)
