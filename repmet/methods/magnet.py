"""Magnet Loss (Rippel et al., ICLR 2016): K k-means clusters per class over the embedded
training set, refreshed during training; batches of a seed cluster and its nearest impostor
clusters; evaluation by soft assignment over the L nearest clusters."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from repmet.config import ExperimentConfig, at_least, positive
from repmet.data.cluster_sampler import ClusterBatchSampler
from repmet.errors import UserError
from repmet.losses import BatchResult, MagnetLoss
from repmet.methods.base import BatchLearner, TrainedGallery
from repmet.methods.fine_grained import FineGrainedMethod
from repmet.methods.registry import register_method
from repmet.ops.distances import SquaredEuclideanDistance
from repmet.ops.kmeans import kmeans


@dataclass
class MagnetConfig:
    """The ``magnet:`` section."""

    clusters_per_class: int = field(default=1, metadata=at_least(1))  # K
    alpha: float = field(default=1.0, metadata=at_least(0.0))
    refresh_every: int = field(default=100, metadata=at_least(1))  # steps between k-means refreshes of the clusters
    eval_neighbors: int = field(default=8, metadata=at_least(1))  # L: nearest clusters used for the soft assignment
    # batch: sigma^2 is each batch's variance (the paper's); initial: the training set's variance
    # around its clusters in the initial embedding, kept fixed (see repmet.losses.magnet)
    variance: Literal["batch", "initial"] = "batch"
    # with variance: initial, sigma^2 = this x the initial variance. Below 1 the loss asks for a
    # smaller distance margin (2 sigma^2 (alpha + ln #impostor clusters)), one the few training images can meet
    # without being collapsed onto their cluster means
    variance_scale: float = field(default=1.0, metadata=positive())


class MagnetLearner(BatchLearner):
    def __init__(self, num_classes: int, embedding_dim: int, settings: MagnetConfig, seed: int) -> None:
        super().__init__()
        self.k, self.refresh_every, self.eval_neighbors = settings.clusters_per_class, settings.refresh_every, settings.eval_neighbors
        self.seed = seed
        self.criterion = MagnetLoss(settings.alpha)
        self.fixed_variance = settings.variance == "initial"
        self.variance_scale = settings.variance_scale
        self.register_buffer("loss_variance", torch.zeros(()))  # sigma^2 of the loss when fixed
        self.sampler: ClusterBatchSampler | None = None
        self.register_buffer("centers", torch.zeros(num_classes * self.k, embedding_dim))
        self.register_buffer("center_classes", torch.arange(num_classes).repeat_interleave(self.k))
        self.register_buffer("variance", torch.ones(()))
        self.assignment = np.zeros(0, dtype=np.int64)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before magnet.variance existed lack the buffer (they used the batch variance)
        state_dict.setdefault(prefix + "loss_variance", torch.zeros(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def prepare_training(self, train_labels: np.ndarray, config: ExperimentConfig, class_names: list[str],
                         description: str) -> None:
        counts = np.bincount(train_labels, minlength=len(class_names))
        small = np.flatnonzero((counts > 0) & (counts < self.k))
        if len(small):
            raise UserError(f"magnet.clusters_per_class = {self.k} but class {class_names[small[0]]!r} of {description} "
                            f"has only {counts[small[0]]} images; lower magnet.clusters_per_class")
        self.sampler = ClusterBatchSampler(config.batch.classes, config.batch.per_class, config.seed)
        self.assignment = np.zeros(len(train_labels), dtype=np.int64)

    @torch.no_grad()
    def _fit_clusters(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """k-means per class over the embedded training set: sets the centres and the
        variance used for evaluation and returns each sample's cluster."""
        assignment = torch.zeros(len(labels), dtype=torch.long)
        for c in labels.unique().tolist():
            members = torch.nonzero(labels == c).flatten()
            centers, local = kmeans(embeddings[members], self.k, seed=self.seed + c)
            self.centers[c * self.k : (c + 1) * self.k] = centers
            assignment[members] = c * self.k + local.cpu()
        own = (embeddings - self.centers[assignment.to(embeddings.device)]).pow(2).sum(1)
        self.variance.fill_(own.sum().item() / max(len(labels) - 1, 1))
        return assignment

    def initialise(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Cluster the training set and hand the clusters to the batch sampler."""
        self.assignment = self._fit_clusters(embeddings, labels).numpy()
        if self.fixed_variance and float(self.loss_variance) == 0.0:  # the first time only: kept in checkpoints
            self.loss_variance.copy_(self.variance * self.variance_scale)
        self.sampler.set_clusters(self.assignment, self.center_classes.cpu().numpy(), self.centers)

    def prepare_evaluation(self, embed_train) -> None:
        """Evaluation uses clusters of the current embedding (the sampler's clusters are
        refreshed only every ``refresh_every`` steps and would be stale)."""
        self._fit_clusters(*embed_train())

    def sample(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        return self.sampler.batch(epoch, step)

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> BatchResult:
        batch_clusters, cluster_ids = torch.unique(groups, return_inverse=True)
        variance = float(self.loss_variance) if self.fixed_variance else None
        return self.criterion(embeddings, cluster_ids, self.center_classes[batch_clusters], variance)

    def after_step(self, step: int, groups: np.ndarray, result: BatchResult, embed_train) -> None:
        self.sampler.record_losses(groups, result.per_sample.cpu().numpy())
        if (step + 1) % self.refresh_every == 0:
            embeddings, labels = embed_train()  # puts the model in eval mode and back in train mode
            losses = self.sampler.losses.copy()
            self.initialise(embeddings, labels)
            self.sampler.losses = losses

    def log_posterior(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Soft assignment over the L nearest clusters (Rippel et al., section 3.3)."""
        distances = SquaredEuclideanDistance()(embeddings, self.centers)
        nearest = distances.topk(min(self.eval_neighbors, distances.shape[1]), dim=1, largest=False)
        weights = torch.exp(-(nearest.values - nearest.values[:, :1]) / (2 * self.variance))
        scores = torch.zeros(embeddings.shape[0], int(self.center_classes.max()) + 1, device=embeddings.device)
        scores.scatter_add_(1, self.center_classes[nearest.indices], weights)
        return torch.log(F.normalize(scores, p=1, dim=1).clamp_min(1e-30))

    def sampler_state(self) -> dict:
        return {"assignment": torch.from_numpy(self.assignment), "losses": torch.from_numpy(self.sampler.losses)}

    def load_sampler_state(self, state: dict) -> None:
        self.assignment = state["assignment"].numpy()
        self.sampler.set_clusters(self.assignment, self.center_classes.cpu().numpy(), self.centers)
        self.sampler.losses = state["losses"].numpy()


class Magnet(FineGrainedMethod):
    name = "magnet"
    section = "magnet"
    section_class = MagnetConfig

    def create_learner(self, config: ExperimentConfig, num_classes: int) -> MagnetLearner:
        return MagnetLearner(num_classes, config.head.embedding_dim, config.magnet, config.seed)

    def reps_per_class(self, config: ExperimentConfig) -> int:
        return config.magnet.clusters_per_class

    def gallery(self, config: ExperimentConfig, model) -> TrainedGallery:
        """The cluster centres, with Magnet's ``exp(-d / (2 var))``: sigma^2 = the variance. The
        exported posterior takes each class's nearest cluster (RepMet's rule) instead of the soft
        assignment over the L nearest; with one cluster per class both pick the nearest."""
        learner = model.method
        reps = learner.centers.detach().reshape(-1, learner.k, learner.centers.shape[1])
        return TrainedGallery(reps, math.sqrt(float(learner.variance)), "sqeuclidean", normalized=True)


register_method(Magnet())
