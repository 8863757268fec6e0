"""RepMet (Karlinsky et al., CVPR 2019): K learnable representatives per class, initialised by
k-means, class-balanced batches, cross-entropy on the class posterior plus the margin loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from repmet.config import ExperimentConfig, at_least, positive
from repmet.data.class_balanced_sampler import ClassBalancedSampler
from repmet.errors import UserError
from repmet.losses import BatchResult, RepMetLoss
from repmet.methods.base import BatchLearner, TrainedGallery
from repmet.methods.fine_grained import FineGrainedMethod
from repmet.methods.registry import register_method
from repmet.models import RepresentativesHead
from repmet.ops.distances import create_distance
from repmet.ops.kmeans import kmeans
from repmet.ops.posterior import class_log_posterior


@dataclass
class RepMetConfig:
    """The ``repmet:`` section."""

    reps_per_class: int = field(default=1, metadata=at_least(1))  # K
    sigma: float = field(default=0.5, metadata=positive())
    alpha: float = field(default=1.0, metadata=at_least(0.0))  # margin
    ce_weight: float = field(default=1.0, metadata=at_least(0.0))
    margin_weight: float = field(default=1.0, metadata=at_least(0.0))


class RepMetLearner(BatchLearner):
    def __init__(self, num_classes: int, embedding_dim: int, settings: RepMetConfig, distance: str, seed: int) -> None:
        super().__init__()
        self.head = RepresentativesHead(num_classes, settings.reps_per_class, embedding_dim, create_distance(distance))
        self.criterion = RepMetLoss(settings.sigma, settings.alpha, settings.ce_weight, settings.margin_weight)
        self.seed = seed
        self.sampler: ClassBalancedSampler | None = None

    def prepare_training(self, train_labels: np.ndarray, config: ExperimentConfig, class_names: list[str],
                         description: str) -> None:
        k = self.head.reps_per_class
        counts = np.bincount(train_labels, minlength=self.head.num_classes)
        small = np.flatnonzero((counts > 0) & (counts < k))
        if len(small):
            raise UserError(f"repmet.reps_per_class = {k} but class {class_names[small[0]]!r} of {description} has "
                            f"only {counts[small[0]]} images for k-means; lower repmet.reps_per_class")
        b = config.batch
        self.sampler = ClassBalancedSampler(train_labels, b.classes, b.per_class, config.seed, description)

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
        return class_log_posterior(self.head(embeddings), self.criterion.sigma)


class RepMet(FineGrainedMethod):
    name = "repmet"
    section = "repmet"
    section_class = RepMetConfig

    def create_learner(self, config: ExperimentConfig, num_classes: int) -> RepMetLearner:
        return RepMetLearner(num_classes, config.head.embedding_dim, config.repmet, config.loss.distance, config.seed)

    def reps_per_class(self, config: ExperimentConfig) -> int:
        return config.repmet.reps_per_class

    def gallery(self, config: ExperimentConfig, model) -> TrainedGallery:
        head = model.method.head
        reps = head.representatives.detach().reshape(head.num_classes, head.reps_per_class, -1)
        return TrainedGallery(reps, config.repmet.sigma, config.loss.distance, normalized=True)


register_method(RepMet())
