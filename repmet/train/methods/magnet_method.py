"""Magnet Loss (Rippel et al. 2016): k-means clusters per class, cluster batches, soft-assignment evaluation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from repmet.data.cluster_sampler import ClusterBatchSampler
from repmet.errors import UserError
from repmet.ops.distances import SquaredEuclideanDistance
from repmet.ops.kmeans import kmeans
from repmet.train.losses.magnet import MagnetLoss
from repmet.train.losses.repmet import BatchResult
from repmet.train.methods.base import BatchMethod


class MagnetMethod(BatchMethod):
    def __init__(self, num_classes: int, embedding_dim: int, clusters_per_class: int, alpha: float,
                 refresh_every: int, eval_neighbors: int, train_labels: np.ndarray, clusters_per_batch: int,
                 samples_per_cluster: int, seed: int, class_names: list[str], description: str) -> None:
        super().__init__()
        counts = np.bincount(train_labels, minlength=num_classes)
        small = np.flatnonzero((counts > 0) & (counts < clusters_per_class))
        if len(small):
            raise UserError(f"magnet.clusters_per_class = {clusters_per_class} but class {class_names[small[0]]!r} "
                            f"of {description} has only {counts[small[0]]} images; lower magnet.clusters_per_class")
        self.k, self.refresh_every, self.eval_neighbors, self.seed = clusters_per_class, refresh_every, eval_neighbors, seed
        self.criterion = MagnetLoss(alpha)
        self.sampler = ClusterBatchSampler(clusters_per_batch, samples_per_cluster, seed)
        self.register_buffer("centers", torch.zeros(num_classes * clusters_per_class, embedding_dim))
        self.register_buffer("center_classes", torch.arange(num_classes).repeat_interleave(clusters_per_class))
        self.register_buffer("variance", torch.ones(()))
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
        self.sampler.set_clusters(self.assignment, self.center_classes.cpu().numpy(), self.centers)

    def prepare_evaluation(self, embed_train) -> None:
        """Evaluation uses clusters of the current embedding (the sampler's clusters are
        refreshed only every ``refresh_every`` steps and would be stale)."""
        self._fit_clusters(*embed_train())

    def sample(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        return self.sampler.batch(epoch, step)

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> BatchResult:
        batch_clusters, cluster_ids = torch.unique(groups, return_inverse=True)
        return self.criterion(embeddings, cluster_ids, self.center_classes[batch_clusters])

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
