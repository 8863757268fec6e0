"""Models built in one place, from a config's ``model`` and ``head`` sections, for training
and for loading a checkpoint alike (then without downloading ImageNet weights: the
checkpoint's own weights replace them)."""

from __future__ import annotations

from torch import nn

from repmet.config import ExperimentConfig, ModelConfig
from repmet.errors import UserError
from repmet.models.embedding_head import EMBEDDING_HEADS
from repmet.models.fine_grained import FineGrainedModel
from repmet.models.frozen import FrozenBackbone
from repmet.models.partial_freeze import PartiallyFrozenBackbone
from repmet.models.registry import create_model


def build_backbone(model: ModelConfig, pretrained: bool = True) -> nn.Module:
    """The backbone of ``model``; ``pretrained=False`` skips its ImageNet weights (for a checkpoint)."""
    return create_model(model.name, in_channels=model.in_channels, hidden_channels=model.hidden_channels,
                        out_channels=model.out_channels, pretrained=model.pretrained and pretrained,
                        weights=model.weights if pretrained else None)


def build_fine_grained_model(config: ExperimentConfig, learner: nn.Module, pretrained: bool = True) -> FineGrainedModel:
    """Backbone (frozen when ``model.frozen``) + embedding head (+ Inception's auxiliary head
    while fine-tuning) + the method's ``learner``."""
    m, h = config.model, config.head
    backbone = build_backbone(m, pretrained)
    aux_dim = getattr(backbone, "aux_dim", None)
    if m.frozen and m.trainable_blocks is not None:
        raise UserError(f"model.frozen: true freezes every block, but model.trainable_blocks is {m.trainable_blocks}; "
                        f"set model.frozen: false to fine-tune the top blocks")
    if m.frozen:
        backbone = FrozenBackbone(backbone)
    elif m.trainable_blocks is not None:
        backbone = PartiallyFrozenBackbone(backbone, m.trainable_blocks, m.name)
    elif m.cache_features:
        raise UserError("model.cache_features needs model.frozen: true or model.trainable_blocks (the features "
                        "of a backbone that trains change)")
    head_class = EMBEDDING_HEADS[h.kind]
    head = head_class(backbone.feature_dim, h.hidden_dim, h.embedding_dim, h.dropout)
    aux_head = head_class(aux_dim, h.hidden_dim, h.embedding_dim, h.dropout) if aux_dim and not m.frozen else None
    return FineGrainedModel(backbone, head, learner, aux_head)
