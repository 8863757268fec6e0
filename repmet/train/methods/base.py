"""What a batch-trained metric-learning method provides to the trainer and the evaluator."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from repmet.train.losses.repmet import BatchResult


class BatchMethod(nn.Module):
    """Owns the method's trainable state (RepMet representatives) or buffers (Magnet
    clusters), its batch sampler, its loss, and how it classifies embeddings."""

    def initialise(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Set up from the embedded training set before the first step."""
        raise NotImplementedError

    def sample(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices into the training split, per-index group ids the loss needs)``."""
        raise NotImplementedError

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> BatchResult:
        raise NotImplementedError

    def after_step(self, step: int, groups: np.ndarray, result: BatchResult, embed_train) -> None:
        """Bookkeeping after an optimizer step (Magnet: cluster losses and refreshes)."""

    def prepare_evaluation(self, embed_train) -> None:
        """Called before evaluating; ``embed_train()`` gives ``(embeddings, labels)`` of the
        training set for methods that need them (Magnet: fresh clusters)."""

    def log_posterior(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Closed-set class log-posteriors ``[B, C]``."""
        raise NotImplementedError

    def sampler_state(self) -> dict:
        return {}

    def load_sampler_state(self, state: dict) -> None:
        pass
