"""The embedding head of the Magnet and RepMet papers: FC -> ReLU -> FC -> L2 normalisation."""

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
