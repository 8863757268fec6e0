"""Magnet Loss batches (Rippel et al. 2016): a seed cluster drawn in proportion to its
recent loss, its M-1 nearest clusters of other classes, D samples from each."""

from __future__ import annotations

import numpy as np
import torch

from repmet.ops.distances import SquaredEuclideanDistance


class ClusterBatchSampler:
    def __init__(self, clusters_per_batch: int, samples_per_cluster: int, seed: int) -> None:
        self.m, self.d, self.seed = clusters_per_batch, samples_per_cluster, seed
        self.members: list[np.ndarray] = []
        self.cluster_classes = np.zeros(0, dtype=np.int64)
        self.losses = np.zeros(0)
        self.nearest_impostors = np.zeros((0, 0), dtype=np.int64)

    def set_clusters(self, assignment: np.ndarray, cluster_classes: np.ndarray, centers: torch.Tensor) -> None:
        """``assignment[i]``: cluster of sample ``i``; ``cluster_classes[c]``: class of cluster ``c``."""
        n_clusters = len(cluster_classes)
        self.members = [np.flatnonzero(assignment == c) for c in range(n_clusters)]
        self.cluster_classes = np.asarray(cluster_classes)
        distances = SquaredEuclideanDistance()(centers, centers).cpu().numpy()
        same_class = self.cluster_classes[:, None] == self.cluster_classes[None, :]
        empty = np.array([len(m) == 0 for m in self.members])
        distances[same_class | empty[None, :]] = np.inf
        impostors = min(self.m - 1, int((~same_class[0]).sum()))
        self.nearest_impostors = np.argsort(distances, axis=1, kind="stable")[:, :impostors]
        # Clusters start equally likely; recent losses then take over.
        self.losses = np.where(empty, 0.0, 1.0)

    def record_losses(self, batch_clusters: np.ndarray, sample_losses: np.ndarray) -> None:
        """Each batch cluster's loss becomes the mean loss of its samples in this batch."""
        for cluster in np.unique(batch_clusters):
            self.losses[cluster] = float(sample_losses[batch_clusters == cluster].mean())

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices [M*D], cluster of each index)``. Clusters smaller than D are sampled
        with replacement."""
        rng = np.random.default_rng([self.seed, epoch, step])
        weights = self.losses + 1e-12 * (self.losses == 0) * np.array([len(m) > 0 for m in self.members])
        seed_cluster = rng.choice(len(self.members), p=weights / weights.sum())
        clusters = np.concatenate([[seed_cluster], self.nearest_impostors[seed_cluster]])
        indices, owners = [], []
        for cluster in clusters:
            members = self.members[cluster]
            indices.append(rng.choice(members, size=self.d, replace=len(members) < self.d))
            owners.append(np.full(self.d, cluster))
        return np.concatenate(indices), np.concatenate(owners)
