"""Magnet Loss (Rippel, Paluri, Dollar and Bourdev, ICLR 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repmet.ops.distances import SquaredEuclideanDistance
from repmet.losses.base import BatchResult


class MagnetLoss(nn.Module):
    """For a batch of M clusters x D samples: with cluster means ``mu_m`` and the batch
    variance ``sigma^2 = sum |r - mu(r)|^2 / (N - 1)``,

        loss(r) = relu( |r - mu(r)|^2 / (2 sigma^2) + alpha
                        + log sum_{m: class(m) != class(r)} exp(-|r - mu_m|^2 / (2 sigma^2)) )

    i.e. ``-log(exp(-d_own / 2s^2 - alpha) / sum_other exp(-d_m / 2s^2))`` clipped at 0.
    The normaliser is ``-1 / (2 sigma^2)`` with sigma^2 the variance itself (the reference
    code squared it a second time).

    ``forward(..., variance=v)`` uses a given ``sigma^2`` instead of the batch's (a constant, as
    RepMet's sigma is): with the batch variance the loss is scale-free and keeps falling as the
    training samples of each cluster draw together, so on few images it rewards collapsing them
    long after the clusters are separated; with a fixed scale it stops at the margin.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.distance = SquaredEuclideanDistance()

    def forward(self, embeddings: torch.Tensor, cluster_ids: torch.Tensor, cluster_classes: torch.Tensor,
                variance: float | None = None) -> BatchResult:
        """``embeddings [N, D]``; ``cluster_ids [N]`` in 0..M-1 (the batch's clusters);
        ``cluster_classes [M]`` the class of each of those clusters; ``variance``: a fixed
        ``sigma^2`` (None: the batch variance, the paper's)."""
        m = cluster_classes.shape[0]
        counts = torch.bincount(cluster_ids, minlength=m).clamp_min(1).to(embeddings.dtype)
        means = torch.zeros(m, embeddings.shape[1], dtype=embeddings.dtype, device=embeddings.device)
        means = means.index_add(0, cluster_ids, embeddings) / counts[:, None]
        distances = self.distance(embeddings, means)  # [N, M]
        own = distances.gather(1, cluster_ids[:, None]).squeeze(1)
        if variance is None:
            variance = own.sum() / max(embeddings.shape[0] - 1, 1)
        scale = -1.0 / (2.0 * variance)
        sample_classes = cluster_classes[cluster_ids]
        other = cluster_classes[None, :] != sample_classes[:, None]
        log_other = torch.logsumexp((scale * distances).masked_fill(~other, float("-inf")), dim=1)
        per_sample = F.relu(-scale * own + self.alpha + log_other)
        # Accuracy: the nearest batch cluster belongs to the sample's class.
        accuracy = (cluster_classes[distances.argmin(dim=1)] == sample_classes).to(embeddings.dtype).mean()
        return BatchResult(per_sample.mean(), accuracy, per_sample.detach())
