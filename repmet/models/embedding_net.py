"""The embedding graph every artifact holds: preprocessed images in, embeddings out."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingNet(nn.Module):
    """``images [B, C, H, W]`` (preprocessed) -> ``embeddings [B, D]``.

    ``head`` is the trained embedding head (RepMet / Magnet; it L2-normalises). Prototypical
    Networks have none and are *not* normalised: they were trained on raw squared distances,
    and normalising would change their predictions (``metadata.embedding.normalized`` says which).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images)
        return self.head(features) if self.head is not None else features
