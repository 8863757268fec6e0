"""Prototypical Networks loss (Snell, Swersky and Zemel, NeurIPS 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repmet.losses.base import EpisodeResult, EpisodicLoss
from repmet.ops.distances import Distance, SquaredEuclideanDistance
from repmet.ops.posterior import PROTOTYPICAL_SIGMA, class_log_posterior


class PrototypicalLoss(EpisodicLoss):
    """Each class's prototype is the mean of its support embeddings; a query's class
    posterior is ``softmax(-d(query, prototypes))`` (the shared posterior with K = 1 and
    sigma^2 = 1/2); the loss is its negative log-likelihood."""

    def __init__(self, distance: Distance | None = None) -> None:
        super().__init__()
        self.distance = distance or SquaredEuclideanDistance()

    def compute_loss(self, support: torch.Tensor, query: torch.Tensor) -> EpisodeResult:
        way, n_query = query.shape[:2]
        prototypes = support.mean(dim=1)
        distances = self.distance(query.flatten(0, 1), prototypes)[:, :, None]  # [B, C, K = 1]
        log_probs = class_log_posterior(distances, PROTOTYPICAL_SIGMA)
        targets = torch.arange(way, device=query.device).repeat_interleave(n_query)
        loss = F.nll_loss(log_probs, targets)
        # argmax over the class dimension only: correct for any number of queries, one included.
        accuracy = (log_probs.argmax(dim=1) == targets).to(log_probs.dtype).mean()
        return EpisodeResult(loss, accuracy, log_probs)
