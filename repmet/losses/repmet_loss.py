"""The RepMet loss (Karlinsky et al., CVPR 2019): cross-entropy on the class posterior plus
the margin embedding loss. The reference PyTorch code had only the margin term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repmet.losses.base import BatchResult
from repmet.ops.posterior import class_log_posterior


def margin_loss(distances: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """``[B]``: ``relu(min_k d(own class) - min_k d(nearest other class) + alpha)`` for
    ``distances [B, C, K]`` and ``labels [B]`` in 0..C-1 (the classifier's and the detector's
    margin term alike)."""
    best = distances.min(dim=2).values
    own = best.gather(1, labels[:, None]).squeeze(1)
    others = best.masked_fill(F.one_hot(labels, best.shape[1]).bool(), float("inf")).min(dim=1).values
    return F.relu(own - others + alpha)


class RepMetLoss(nn.Module):
    def __init__(self, sigma: float = 0.5, alpha: float = 1.0, ce_weight: float = 1.0,
                 margin_weight: float = 1.0) -> None:
        super().__init__()
        self.sigma, self.alpha = sigma, alpha
        self.ce_weight, self.margin_weight = ce_weight, margin_weight

    def forward(self, distances: torch.Tensor, labels: torch.Tensor) -> BatchResult:
        """``distances [B, C, K]`` from :class:`RepresentativesHead`; ``labels [B]`` in 0..C-1."""
        if distances.dim() != 3 or distances.shape[0] != labels.shape[0]:
            raise ValueError(f"expected distances [B, C, K] and labels [B], got {tuple(distances.shape)} "
                             f"and {tuple(labels.shape)}")
        log_posterior = class_log_posterior(distances, self.sigma)
        cross_entropy = F.nll_loss(log_posterior, labels, reduction="none")
        margin = margin_loss(distances, labels, self.alpha)
        per_sample = self.ce_weight * cross_entropy + self.margin_weight * margin
        accuracy = (log_posterior.argmax(dim=1) == labels).to(distances.dtype).mean()
        return BatchResult(per_sample.mean(), accuracy, per_sample.detach())
