"""What frozen features give without metric learning, for calibrating a trained embedding: a
linear probe and the nearest class mean, both on the same features the head trains on."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from repmet.config import ExperimentConfig
from repmet.data.feature_cache import cached_features
from repmet.methods.fine_grained import transform_spec
from repmet.models import FrozenBackbone, build_backbone
from repmet.models.identity import backbone_identity


def raw_backbone_features(config: ExperimentConfig, paths: Sequence[str | Path], device: torch.device | None = None,
                          progress: bool = True) -> torch.Tensor:
    """The pooled features of the config's backbone, untrained by the config, of each image's
    centre crop: the rows a frozen-feature run caches, read from (or added to) the same cache."""
    m = config.model
    backbone = FrozenBackbone(build_backbone(m))
    return cached_features(backbone, backbone_identity(m.name, m.pretrained, m.weights), paths,
                           transform_spec(config), "center", device or torch.device("cpu"), progress=progress)


def linear_probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                          test_y: torch.Tensor, num_classes: int, l2: float = 1e-4) -> float:
    """Multinomial logistic regression on standardised features (L-BFGS, 200 iterations,
    ``l2`` weight penalty), scored on the test features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    weights = torch.zeros(train_x.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=200, line_search_fn="strong_wolfe")
    standardised = (train_x - mean) / std

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(standardised @ weights + bias, train_y) + l2 * weights.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = (((test_x - mean) / std) @ weights + bias).argmax(1)
    return (predicted == test_y).float().mean().item()


def nearest_class_mean_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                                test_y: torch.Tensor, num_classes: int) -> float:
    """Cosine similarity to each class's mean L2-normalised feature (classes without training
    images are never predicted)."""
    present = torch.tensor([bool((train_y == c).any()) for c in range(num_classes)])
    centroids = torch.stack([F.normalize(train_x[train_y == c], dim=1).mean(0) if present[c]
                             else torch.zeros(train_x.shape[1]) for c in range(num_classes)])
    similarity = F.normalize(test_x, dim=1) @ F.normalize(centroids, dim=1).t()
    predicted = similarity.masked_fill(~present[None, :], float("-inf")).argmax(1)
    return (predicted == test_y).float().mean().item()
