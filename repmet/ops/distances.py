"""Pairwise distances as matrix products, so they are fast and export to every format.

The two formulas are plain functions (TorchScript can script them, so the exported distance
head uses them too); a ``Distance`` object wraps one so that it can be injected into a loss,
and one loss formula serves squared Euclidean and cosine alike (as in pytorch-metric-learning).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repmet.registry import Registry


def squared_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, D], [M, D] -> [N, M]``: |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, clamped at 0 against rounding."""
    a_sq = a.pow(2).sum(1, keepdim=True)
    b_sq = b.pow(2).sum(1).unsqueeze(0)
    return (a_sq + b_sq - 2.0 * a @ b.t()).clamp_min(0.0)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, D], [M, D] -> [N, M]``: 1 - cos(a, b)."""
    return 1.0 - F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()


class Distance:
    """``__call__(a [N, D], b [M, D]) -> [N, M]``; smaller means closer."""

    name: str = ""

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
            raise ValueError(f"expected [N, D] and [M, D] embeddings, got {tuple(a.shape)} and {tuple(b.shape)}")
        return self.pairwise(a, b)

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SquaredEuclideanDistance(Distance):
    name = "sqeuclidean"

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return squared_euclidean(a, b)


class CosineDistance(Distance):
    name = "cosine"

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cosine(a, b)


DISTANCES: Registry[type[Distance]] = Registry("distance")
for _distance in (SquaredEuclideanDistance, CosineDistance):
    DISTANCES.register(_distance.name, _distance)
DISTANCE_NAMES = tuple(DISTANCES.names())


def create_distance(name: str) -> Distance:
    return DISTANCES.get(name)()
