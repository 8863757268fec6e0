"""The interface every episodic few-shot loss shares."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EpisodeResult:
    """``loss``: scalar; ``accuracy``: fraction of queries classified right (a float tensor);
    ``log_probs``: ``[way * query, way]`` class log-posteriors of the queries."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    log_probs: torch.Tensor


@dataclass
class BatchResult:
    """What a batch loss (RepMet, Magnet) returns: ``loss`` scalar, ``accuracy`` a float tensor,
    ``per_sample [B]`` each sample's loss (Magnet's sampler weighs clusters by it)."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    per_sample: torch.Tensor


class EpisodicLoss(nn.Module):
    """``forward(support [way, shot, D], query [way, query, D])``: checks shapes, then
    calls ``compute_loss``. Query ``j`` of row ``c`` belongs to class ``c``."""

    def forward(self, support: torch.Tensor, query: torch.Tensor) -> EpisodeResult:
        if support.dim() != 3 or query.dim() != 3:
            raise ValueError(f"expected [way, n, D] support and query, got {tuple(support.shape)} and {tuple(query.shape)}")
        if support.shape[0] != query.shape[0] or support.shape[2] != query.shape[2]:
            raise ValueError(f"support {tuple(support.shape)} and query {tuple(query.shape)} disagree on way or dimension")
        return self.compute_loss(support, query)

    def compute_loss(self, support: torch.Tensor, query: torch.Tensor) -> EpisodeResult:
        raise NotImplementedError
