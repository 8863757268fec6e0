"""Fine-tuning only the top of a backbone: the bottom blocks frozen (weights and BatchNorm
statistics), the top blocks trained.

With ``model.cache_features`` the frozen bottom's activation maps are computed once per image
and view and the top blocks train on them, which is what makes fine-tuning affordable on a CPU:
on EfficientNet-Lite0 the last five of its 16 blocks are about a third of the network's
multiply-adds. A backbone that can be split provides ``num_blocks``, ``bottom_modules(cut)``,
``forward_bottom(images, cut)`` and ``forward_top(maps, cut)`` (EfficientNet-Lite0, the ResNets).
"""

from __future__ import annotations

import torch
from torch import nn

from repmet.errors import UserError


class PartiallyFrozenBackbone(nn.Module):
    """``images -> features``, with everything below the last ``trainable_blocks`` blocks frozen.
    The wrapped backbone keeps its parameter names (``backbone.*``, as :class:`FrozenBackbone`),
    so checkpoints and exports see one ordinary network."""

    def __init__(self, backbone: nn.Module, trainable_blocks: int, name: str = "this backbone") -> None:
        super().__init__()
        if not hasattr(backbone, "forward_bottom"):
            raise UserError(f"model.trainable_blocks: {name} cannot be split into frozen and trained blocks; "
                            f"use efficientnet_lite0 or a resnet, or model.frozen: true / false")
        if not 1 <= trainable_blocks <= backbone.num_blocks:
            raise UserError(f"model.trainable_blocks is {trainable_blocks}; {name} has {backbone.num_blocks} blocks, "
                            f"so it must be between 1 and {backbone.num_blocks}")
        self.backbone = backbone
        self.cut = backbone.num_blocks - trainable_blocks
        self._frozen = backbone.bottom_modules(self.cut)  # a plain list: not registered twice
        for module in self._frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
            module.eval()

    @property
    def cached_part_key(self) -> str:
        """Keys the feature cache: these maps are not the whole backbone's features."""
        return f"|bottom-{self.cut}-blocks"

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    def train(self, mode: bool = True) -> "PartiallyFrozenBackbone":
        super().train(mode)
        for module in self._frozen:
            module.eval()  # frozen BatchNorm keeps its ImageNet statistics
        return self

    def cached_part(self, images: torch.Tensor) -> torch.Tensor:
        """What the feature cache stores: the frozen bottom's activation map."""
        return self.backbone.forward_bottom(images, self.cut)

    def trained_part(self, maps: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_top(maps, self.cut)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.trained_part(self.cached_part(images))
