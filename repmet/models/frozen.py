"""Freezing a backbone completely: no gradients and no BatchNorm statistics updates."""

from __future__ import annotations

from torch import nn


class FrozenBackbone(nn.Module):
    """Wraps a backbone so it stays in eval mode even when the surrounding model is put in
    train mode: BatchNorm keeps its ImageNet running statistics (the reference code let
    them drift with ``requires_grad=False`` alone) and dropout stays off."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        self.backbone.eval()

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    def train(self, mode: bool = True) -> "FrozenBackbone":
        super().train(mode)
        self.backbone.eval()
        return self

    cached_part_key = ""  # the cache holds the whole backbone's features (repmet.models.partial_freeze differs)

    def cached_part(self, images):
        """What the feature cache stores: the whole backbone's features."""
        return self.backbone(images)

    def trained_part(self, features):
        return features

    def forward(self, images):
        return self.backbone(images)
