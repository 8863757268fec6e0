"""What every runtime backend does: embed a preprocessed batch and run the distance head.

Inputs and outputs are numpy arrays, so the classifier above never sees a framework."""

from __future__ import annotations

import numpy as np


class Backend:
    """``embed(images [B, C, H, W] float32) -> [B, D]``;
    ``head(embeddings [B, D], representatives [C, K, D]) -> (distances [B, C, K], posteriors [B, C])``.
    Implementations must be safe to call from several threads at once."""

    name: str = ""
    device: str = "cpu"

    def embed(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def head(self, embeddings: np.ndarray, representatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def numpy_head(embeddings: np.ndarray, representatives: np.ndarray, distance: str,
               sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The distance head in numpy (the same formula as ``repmet.models.distance_head.DistanceHead``),
    for backends whose engines hold only the embedding network."""
    c, k, d = representatives.shape
    reps = representatives.reshape(c * k, d).astype(np.float32)
    x = embeddings.astype(np.float32)
    if distance == "cosine":
        x_n = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        r_n = reps / np.maximum(np.linalg.norm(reps, axis=1, keepdims=True), 1e-12)
        distances = 1.0 - x_n @ r_n.T
    else:
        distances = np.maximum((x * x).sum(1)[:, None] + (reps * reps).sum(1)[None, :] - 2.0 * x @ reps.T, 0.0)
    distances = distances.reshape(len(x), c, k)
    logits = -distances.min(axis=2) / np.float32(2.0 * sigma * sigma)
    logits -= logits.max(axis=1, keepdims=True)
    posteriors = np.exp(logits)
    return distances, (posteriors / posteriors.sum(axis=1, keepdims=True)).astype(np.float32)
