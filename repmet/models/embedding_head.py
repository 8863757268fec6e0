"""Embedding heads: features ``[B, F]`` -> unit vectors ``[B, D]``.

``mlp`` is the head of the Magnet and RepMet papers (FC -> ReLU -> FC -> L2 normalisation).
``residual`` starts as the L2-normalised features themselves and learns a correction on top
(``normalize(x_hat + FC(ReLU(FC(x_hat))))``, the last FC zero-initialised): the pretrained
features' geometry, which is what transfers to classes the head never saw, is where training
starts rather than something the head must re-learn from a random projection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EmbeddingHead(nn.Module):
    """``[B, in_features] -> [B, embedding_dim]`` unit vectors. ``dropout`` (on the input
    features, training only) regularises heads trained on few cached features."""

    def __init__(self, in_features: int, hidden_dim: int, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(in_features, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, embedding_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc2(F.relu(self.fc1(self.dropout(features)))), dim=1)


class ResidualEmbeddingHead(nn.Module):
    """``[B, in_features] -> [B, embedding_dim]`` unit vectors, equal at initialisation to the
    L2-normalised features (``embedding_dim == in_features``) or to a fixed random orthonormal
    projection of them (otherwise; distances then change by about ``1 / sqrt(embedding_dim)``)."""

    def __init__(self, in_features: int, hidden_dim: int, embedding_dim: int, dropout: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(in_features, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, embedding_dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)
        if embedding_dim == in_features:
            self.projection = None
        else:  # a buffer, so that checkpoints carry it and no seed has to be re-played
            generator = torch.Generator().manual_seed(seed)
            q, _ = torch.linalg.qr(torch.randn(max(in_features, embedding_dim), min(in_features, embedding_dim),
                                               generator=generator))
            self.register_buffer("projection", q if in_features >= embedding_dim else q.t())  # [in, out]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.dropout(features), dim=1)
        skip = x if self.projection is None else x @ self.projection
        return F.normalize(skip + self.fc2(F.relu(self.fc1(x))), dim=1)


EMBEDDING_HEADS = {"mlp": EmbeddingHead, "residual": ResidualEmbeddingHead}
