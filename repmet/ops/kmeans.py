"""k-means with k-means++ seeding (Arthur and Vassilvitskii 2007), in torch, seeded."""

from __future__ import annotations

import torch

from repmet.ops.distances import SquaredEuclideanDistance

_sqdist = SquaredEuclideanDistance()


def kmeans(points: torch.Tensor, k: int, iterations: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster ``points [N, D]`` into ``k`` groups: ``(centers [k, D], assignment [N])``.

    Lloyd iterations from a k-means++ start; an emptied cluster is re-seeded at the point
    farthest from its center, so every cluster keeps at least one member.
    """
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points, got k={k} for {n} points")
    generator = torch.Generator().manual_seed(seed)
    points = points.detach().float()
    centers = _kmeans_plus_plus(points, k, generator)
    assignment = torch.zeros(n, dtype=torch.long, device=points.device)
    for _ in range(iterations):
        distances = _sqdist(points, centers)
        new_assignment = distances.argmin(dim=1)
        counts = torch.bincount(new_assignment, minlength=k)
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            farthest = distances.gather(1, new_assignment[:, None]).squeeze(1).argmax()
            new_assignment[farthest] = empty
            distances[farthest] = 0  # do not hand the same point to two empty clusters
        counts = torch.bincount(new_assignment, minlength=k)
        sums = torch.zeros_like(centers).index_add_(0, new_assignment, points)
        centers = sums / counts[:, None].to(points.dtype)
        if torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
    return centers, assignment


def _kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    n = points.shape[0]
    first = torch.randint(n, (1,), generator=generator).item()
    chosen = [first]
    closest = _sqdist(points, points[first : first + 1]).squeeze(1)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # all remaining points coincide with a center
            candidates = [i for i in range(n) if i not in chosen]
            chosen.append(candidates[0])
        else:
            chosen.append(torch.multinomial((closest / total).cpu(), 1, generator=generator).item())
        closest = torch.minimum(closest, _sqdist(points, points[chosen[-1] : chosen[-1] + 1]).squeeze(1))
    return points[chosen].clone()


def padded_centres(points: torch.Tensor, centres: int, k: int, seed: int = 0) -> torch.Tensor:
    """``[k, D]``: ``centres`` (at most k, and at most N) k-means centres of ``points [N, D]``,
    the last one repeated up to k rows. A gallery stores K representatives for every class; the
    repeats change nothing, since a class's distance is the minimum over its representatives."""
    if not 1 <= centres <= k:
        raise ValueError(f"centres must be between 1 and k={k}, got {centres}")
    found = kmeans(points, min(centres, len(points)), seed=seed)[0] if len(points) > 1 else points.detach().float()
    return torch.cat([found, found[-1:].repeat(k - len(found), 1)]) if len(found) < k else found
