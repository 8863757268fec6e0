"""Few-shot episodes over embedded held-out classes: the support embeddings become the
representatives (k-means'd to K when the shots exceed K) and queries take the class of
the nearest one, as the RepMet posterior does."""

from __future__ import annotations


import numpy as np
import torch

from repmet.errors import UserError
from repmet.evaluate.confidence import mean_and_ci95
from repmet.ops.distances import SquaredEuclideanDistance
from repmet.ops.kmeans import kmeans


def fewshot_episodes(embeddings: torch.Tensor, labels: np.ndarray, way: int, shot: int, query: int,
                     episodes: int, seed: int, reps_per_class: int = 1) -> tuple[float, float]:
    """Mean accuracy and its 95% CI (1.96 * sample std / sqrt(episodes))."""
    by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    usable = [c for c, idx in by_class.items() if len(idx) >= shot + query]
    if len(usable) < way:
        raise UserError(f"a {way}-way episode with {shot} + {query} images per class needs {way} classes that "
                        f"large; the held-out classes have {len(usable)}")
    distance = SquaredEuclideanDistance()
    accuracies = []
    for episode in range(episodes):
        rng = np.random.default_rng([seed, 0, episode])
        classes = rng.choice(usable, size=way, replace=False)
        reps, rep_classes, queries, query_classes = [], [], [], []
        for position, c in enumerate(classes):
            chosen = rng.choice(by_class[int(c)], size=shot + query, replace=False)
            support = embeddings[chosen[:shot]]
            if shot > reps_per_class:
                support, _ = kmeans(support, reps_per_class, seed=int(seed + episode))
            reps.append(support)
            rep_classes += [position] * len(support)
            queries.append(embeddings[chosen[shot:]])
            query_classes += [position] * query
        nearest = distance(torch.cat(queries), torch.cat(reps)).argmin(dim=1)
        predicted = torch.tensor(rep_classes)[nearest.cpu()]
        accuracies.append((predicted == torch.tensor(query_classes)).float().mean().item())
    return mean_and_ci95(accuracies)
