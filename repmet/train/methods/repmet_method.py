"""RepMet (Karlinsky et al. 2019): learnable representatives, class-balanced batches."""

from __future__ import annotations

import numpy as np
import torch

from repmet.data.class_balanced_sampler import ClassBalancedSampler
from repmet.errors import UserError
from repmet.models.representatives import RepresentativesHead
from repmet.ops.distances import Distance
from repmet.ops.kmeans import kmeans
from repmet.train.losses.repmet import BatchResult, RepMetLoss, repmet_log_posterior
from repmet.train.methods.base import BatchMethod


class RepMetMethod(BatchMethod):
    def __init__(self, num_classes: int, embedding_dim: int, reps_per_class: int, sigma: float, alpha: float,
                 ce_weight: float, margin_weight: float, distance: Distance, train_labels: np.ndarray,
                 classes_per_batch: int, images_per_class: int, seed: int, class_names: list[str],
                 description: str) -> None:
        super().__init__()
        counts = np.bincount(train_labels, minlength=num_classes)
        present = counts[counts > 0]
        if present.min() < reps_per_class:
            worst = class_names[int(np.flatnonzero((counts > 0) & (counts < reps_per_class))[0])]
            raise UserError(f"repmet.reps_per_class = {reps_per_class} but class {worst!r} of {description} has "
                            f"only {present.min()} images for k-means; lower repmet.reps_per_class")
        self.head = RepresentativesHead(num_classes, reps_per_class, embedding_dim, distance)
        self.criterion = RepMetLoss(sigma, alpha, ce_weight, margin_weight)
        self.sampler = ClassBalancedSampler(train_labels, classes_per_batch, images_per_class, seed,
                                            class_names, description)
        self.seed = seed

    @torch.no_grad()
    def initialise(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Each class's K representatives start at the k-means (k-means++) centres of its embeddings."""
        k = self.head.reps_per_class
        reps = self.head.representatives.view(self.head.num_classes, k, -1)
        for c in labels.unique().tolist():
            centers, _ = kmeans(embeddings[labels == c], k, seed=self.seed + c)
            reps[c] = centers.to(reps.dtype)

    def sample(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        indices = self.sampler.batch(epoch, step)
        return indices, np.zeros_like(indices)

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> BatchResult:
        return self.criterion(self.head(embeddings), labels)

    def log_posterior(self, embeddings: torch.Tensor) -> torch.Tensor:
        return repmet_log_posterior(self.head(embeddings), self.criterion.sigma)
