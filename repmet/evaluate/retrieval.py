"""Retrieval metrics over a labelled set of embeddings, each item querying all the others."""

from __future__ import annotations

import torch

from repmet.ops.distances import SquaredEuclideanDistance


@torch.no_grad()
def retrieval_metrics(embeddings: torch.Tensor, labels: torch.Tensor, chunk: int = 1024) -> dict[str, float]:
    """``precision_at_1`` and ``map_at_r`` (Musgrave et al., "A Metric Learning Reality
    Check", 2020): for a query with R other items of its class, the mean over the top R
    neighbours of precision-at-i counted only where neighbour i is relevant, divided by R."""
    n = embeddings.shape[0]
    class_sizes = torch.bincount(labels)
    r_all = class_sizes[labels] - 1
    max_r = int(r_all.max())
    p_at_1, map_r, counted = 0.0, 0.0, 0
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        distances = SquaredEuclideanDistance()(embeddings[rows], embeddings)
        distances[torch.arange(len(rows)), rows] = float("inf")  # never retrieve yourself
        neighbours = distances.topk(max(max_r, 1), dim=1, largest=False).indices
        relevant = (labels[neighbours] == labels[rows][:, None]).float()
        r = r_all[rows]
        valid = r > 0
        p_at_1 += relevant[valid, 0].sum().item()
        ranks = torch.arange(1, relevant.shape[1] + 1, dtype=torch.float32)
        within_r = (ranks[None, :] <= r[:, None]).float()
        hits = relevant * within_r
        precision = hits.cumsum(1) / ranks[None, :]
        ap = (precision * hits).sum(1) / r.clamp_min(1)
        map_r += ap[valid].sum().item()
        counted += int(valid.sum())
    return {"precision_at_1": p_at_1 / max(counted, 1), "map_at_r": map_r / max(counted, 1)}
