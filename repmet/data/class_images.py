"""A split of a few-shot dataset held in memory: every image of every class, decoded once."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClassImages:
    """``images``: uint8 ``[num_classes, images_per_class, channels, height, width]``;
    ``class_names[i]`` names row ``i``. Episodes index into it, so sampling costs no decoding."""

    images: torch.Tensor
    class_names: list[str]
    description: str

    def __post_init__(self) -> None:
        if self.images.dim() != 5 or self.images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 [C, N, ch, H, W] images, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.images.shape[0] != len(self.class_names):
            raise ValueError(f"{self.images.shape[0]} classes of images but {len(self.class_names)} class names")

    @property
    def num_classes(self) -> int:
        return self.images.shape[0]

    @property
    def images_per_class(self) -> int:
        return self.images.shape[1]
