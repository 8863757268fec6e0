"""RepMet's box classifier (Karlinsky et al., CVPR 2019) as a torchvision ``box_predictor``:
RoI box features -> embedding -> distances to K representatives per class -> class logits
with a background column; box regression is class-agnostic, so a class enrolled after
training still gets refined boxes."""

from __future__ import annotations

import torch
from torch import nn

from repmet.models.embedding_head import EmbeddingHead
from repmet.ops.distances import DISTANCE_NAMES, cosine, squared_euclidean
from repmet.ops.posterior import detection_logits


class RepMetBoxPredictor(nn.Module):
    """``box_features [R, F]`` -> ``(class_logits [R, 1 + C], box_deltas [R, 4 (1 + C)])``, the
    contract of torchvision's ``FastRCNNPredictor`` (background is class 0).

    The representatives ``[C * K, D]`` are learned in base training; enrolling classes replaces
    them (:meth:`set_representatives`), outside ``forward``."""

    def __init__(self, in_features: int, hidden_dim: int, embedding_dim: int, num_classes: int, reps_per_class: int,
                 sigma: float, distance: str = "sqeuclidean") -> None:
        super().__init__()
        if distance not in DISTANCE_NAMES:
            raise ValueError(f"unknown distance {distance!r}; expected one of {DISTANCE_NAMES}")
        self.embedding = EmbeddingHead(in_features, hidden_dim, embedding_dim)
        self.representatives = nn.Parameter(torch.randn(num_classes * reps_per_class, embedding_dim) * 0.1)
        self.bbox_pred = nn.Linear(in_features, 4)  # class-agnostic
        self.reps_per_class, self.sigma, self.cosine = reps_per_class, float(sigma), distance == "cosine"

    @property
    def num_classes(self) -> int:
        return self.representatives.shape[0] // self.reps_per_class

    @torch.no_grad()
    def set_representatives(self, representatives: torch.Tensor) -> None:
        """Replace the gallery with ``representatives [C, K, D]`` (K must match)."""
        c, k, d = representatives.shape
        if k != self.reps_per_class or d != self.representatives.shape[1]:
            raise ValueError(f"representatives {tuple(representatives.shape)} do not fit K = {self.reps_per_class}, "
                             f"D = {self.representatives.shape[1]}")
        self.representatives = nn.Parameter(representatives.reshape(c * k, d).to(self.representatives),
                                            requires_grad=self.representatives.requires_grad)

    def distances(self, box_features: torch.Tensor, representatives: torch.Tensor | None = None) -> torch.Tensor:
        """``[R, C, K]`` from each RoI's embedding to every representative: the trained ones, or
        ``representatives [C, K, D]`` given as an input (the exported graph's gallery)."""
        embeddings = self.embedding(box_features.flatten(1))
        k = self.reps_per_class if representatives is None else representatives.shape[1]
        flat = self.representatives if representatives is None else representatives.reshape(-1, embeddings.shape[1])
        pairwise = cosine(embeddings, flat) if self.cosine else squared_euclidean(embeddings, flat)
        return pairwise.reshape(embeddings.shape[0], -1, k)

    def predict(self, box_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(class_logits, box_deltas, distances)``: the distances feed the margin loss."""
        distances = self.distances(box_features)
        logits = detection_logits(distances, self.sigma)
        deltas = self.bbox_pred(box_features.flatten(1)).repeat(1, logits.shape[1])
        return logits, deltas, distances

    def forward(self, box_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, deltas, _ = self.predict(box_features)
        return logits, deltas
