"""The distance head every artifact holds: embeddings and representatives in, distances and
class posteriors out, with the representatives an input so that classes can be enrolled
without re-exporting."""

from __future__ import annotations

import torch
from torch import nn

from repmet.ops.distances import DISTANCE_NAMES, cosine, squared_euclidean
from repmet.ops.posterior import class_posterior


class DistanceHead(nn.Module):
    """``embeddings [B, D]``, ``representatives [C, K, D]`` -> ``distances [B, C, K]``,
    ``posteriors [B, C]`` (the formula of :mod:`repmet.ops.posterior`)."""

    def __init__(self, distance: str = "sqeuclidean", sigma: float = 0.5) -> None:
        super().__init__()
        if distance not in DISTANCE_NAMES:
            raise ValueError(f"unknown distance {distance!r}; expected one of {DISTANCE_NAMES}")
        self.cosine = distance == "cosine"
        self.sigma = float(sigma)

    def forward(self, embeddings: torch.Tensor, representatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reps = representatives.flatten(0, 1)
        distances = cosine(embeddings, reps) if self.cosine else squared_euclidean(embeddings, reps)
        distances = distances.reshape(embeddings.shape[0], representatives.shape[0], representatives.shape[1])
        return distances, class_posterior(distances, self.sigma)
