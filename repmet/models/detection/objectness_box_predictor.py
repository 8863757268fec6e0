"""A class-agnostic second stage: is this RoI an object, and where exactly is it. Trained on every
box of every base class (and of any extra set) as one class "object", so what it learns is
objectness, which is what a class enrolled after training needs from the detector; which class an
object is, the region embedding decides (:mod:`repmet.models.detection.region_embedder`)."""

from __future__ import annotations

import torch
from torch import nn


class ObjectnessBoxPredictor(nn.Module):
    """``box_features [R, F]`` -> ``(logits [R, 2], box_deltas [R, 8])``: torchvision's
    ``FastRCNNPredictor`` contract with two classes, background (0) and object (1); the box
    regression is one class-agnostic set of deltas, repeated for both columns."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, 2)
        self.bbox_pred = nn.Linear(in_features, 4)

    def forward(self, box_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = box_features.flatten(1)
        return self.cls_score(x), self.bbox_pred(x).repeat(1, 2)

    def objectness(self, box_features: torch.Tensor) -> torch.Tensor:
        """``[R]``: P(object)."""
        return torch.softmax(self.cls_score(box_features.flatten(1)), dim=1)[:, 1]

    def deltas(self, box_features: torch.Tensor) -> torch.Tensor:
        """``[R, 4]`` class-agnostic box deltas."""
        return self.bbox_pred(box_features.flatten(1))
