"""The RepMet loss (Karlinsky et al., CVPR 2019): cross-entropy on the class posterior plus
the margin embedding loss. The reference PyTorch code had only the margin term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repmet.losses.base import BatchResult
from repmet.ops.posterior import class_log_posterior


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
        best = distances.min(dim=2).values
        own = best.gather(1, labels[:, None]).squeeze(1)
        others = best.masked_fill(F.one_hot(labels, best.shape[1]).bool(), float("inf")).min(dim=1).values
        margin = F.relu(own - others + self.alpha)
        per_sample = self.ce_weight * cross_entropy + self.margin_weight * margin
        accuracy = (log_posterior.argmax(dim=1) == labels).to(distances.dtype).mean()
        return BatchResult(per_sample.mean(), accuracy, per_sample.detach())
