"""Backbone + embedding head (+ Inception's auxiliary head) + the method's learner (RepMet
representatives, Magnet clusters), as one module so that one state dict holds everything a
checkpoint needs."""

from __future__ import annotations

import torch
from torch import nn

from repmet.models.embedding_head import EmbeddingHead
from repmet.models.torchvision_backbones import InceptionFeatures

AUX_LOSS_WEIGHT = 0.4  # as in Inception-V3 training (Szegedy et al. 2016)


class FineGrainedModel(nn.Module):
    def __init__(self, backbone: nn.Module, head: EmbeddingHead, method: nn.Module,
                 aux_head: EmbeddingHead | None = None) -> None:
        super().__init__()
        # ``method`` keeps its name: it is the prefix of the learner's keys in every checkpoint.
        self.backbone, self.head, self.method, self.aux_head = backbone, head, method, aux_head

    def embed(self, inputs: torch.Tensor, from_features: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(embeddings, auxiliary embeddings or None)``; ``from_features``: inputs are what the
        feature cache holds (the frozen backbone's features, or the frozen bottom blocks'
        activation maps), not images."""
        if from_features:
            return self.head(self.backbone.trained_part(inputs)), None
        features = self.backbone(inputs.contiguous(memory_format=torch.channels_last))
        if isinstance(features, InceptionFeatures):
            aux = self.aux_head(features.aux_features) if self.aux_head is not None else None
            return self.head(features.features), aux
        return self.head(features), None
