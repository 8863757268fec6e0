"""The two graphs every artifact holds, as plain modules that trace and export cleanly."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


class DistanceHead(nn.Module):
    """``embeddings [B, D]``, ``representatives [C, K, D]`` -> ``distances [B, C, K]``,
    ``posteriors [B, C]``.

    The representatives are an input, never constants, so classes can be enrolled without
    re-exporting. Posterior (RepMet, Karlinsky et al. 2019, eq. 3 normalised over classes):
    ``softmax_c(-min_k d(x, r_ck) / (2 sigma^2))``; Prototypical Networks are the case K = 1,
    sigma^2 = 1/2.
    """

    def __init__(self, distance: str = "sqeuclidean", sigma: float = 0.5) -> None:
        super().__init__()
        if distance not in ("sqeuclidean", "cosine"):
            raise ValueError(f"unknown distance {distance!r}")
        self.cosine = distance == "cosine"
        self.scale = 1.0 / (2.0 * sigma * sigma)

    def forward(self, embeddings: torch.Tensor, representatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reps = representatives.flatten(0, 1)
        if self.cosine:
            distances = 1.0 - F.normalize(embeddings, dim=1) @ F.normalize(reps, dim=1).t()
        else:
            distances = (embeddings.pow(2).sum(1, keepdim=True) + reps.pow(2).sum(1).unsqueeze(0)
                         - 2.0 * embeddings @ reps.t()).clamp_min(0.0)
        distances = distances.reshape(embeddings.shape[0], representatives.shape[0], representatives.shape[1])
        posteriors = torch.softmax(-distances.min(dim=2).values * self.scale, dim=1)
        return distances, posteriors
