"""k-means with k-means++ seeding in numpy, for reducing enrolled shots to K representatives
in the runtime (training uses the torch version in ``repmet.ops.kmeans``, same algorithm)."""

from __future__ import annotations

import numpy as np


def kmeans_numpy(points: np.ndarray, k: int, iterations: int = 50, seed: int = 0) -> np.ndarray:
    """``points [N, D]`` -> ``centers [k, D]`` (float32); ``k == 1`` is the mean."""
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points, got k={k} for {n} points")
    points = points.astype(np.float64)
    if k == 1:
        return points.mean(axis=0, keepdims=True).astype(np.float32)
    rng = np.random.default_rng(seed)
    centers = _kmeans_plus_plus(points, k, rng)
    assignment = np.full(n, -1)
    for _ in range(iterations):
        distances = _sqdist(points, centers)
        new_assignment = distances.argmin(axis=1)
        for empty in np.flatnonzero(np.bincount(new_assignment, minlength=k) == 0):
            farthest = int(distances[np.arange(n), new_assignment].argmax())
            new_assignment[farthest] = empty
            distances[farthest] = 0.0
        centers = np.stack([points[new_assignment == c].mean(axis=0) for c in range(k)])
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
    return centers.astype(np.float32)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [int(rng.integers(len(points)))]
    closest = _sqdist(points, points[chosen[0]][None])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:
            chosen.append(next(i for i in range(len(points)) if i not in chosen))
        else:
            chosen.append(int(rng.choice(len(points), p=closest / total)))
        closest = np.minimum(closest, _sqdist(points, points[chosen[-1]][None])[:, 0])
    return points[chosen].copy()
