"""The RepMet distance head (Karlinsky et al., CVPR 2019): K learnable representatives per class."""

from __future__ import annotations

import torch
from torch import nn

from repmet.ops.distances import Distance, SquaredEuclideanDistance


class RepresentativesHead(nn.Module):
    """``forward(embeddings [B, D]) -> distances [B, num_classes, K]`` to each class's
    representatives, computed as one matrix product."""

    def __init__(self, num_classes: int, reps_per_class: int, embedding_dim: int,
                 distance: Distance | None = None) -> None:
        super().__init__()
        self.num_classes, self.reps_per_class = num_classes, reps_per_class
        self.representatives = nn.Parameter(torch.randn(num_classes * reps_per_class, embedding_dim) * 0.1)
        self.distance = distance or SquaredEuclideanDistance()

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        distances = self.distance(embeddings, self.representatives)
        return distances.view(-1, self.num_classes, self.reps_per_class)
