"""The detector's feature-pyramid backbones by name (``model.name`` of a detection config), on
:class:`repmet.registry.Registry`: each builds a torchvision ``BackboneWithFPN``-like module from
the model section and says how many blocks of it can train (``detection.trainable_blocks``); and
the frozen region backbones that embed the cropped regions (``detection.region_backbone``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from repmet.registry import Registry


@dataclass(frozen=True)
class DetectionBackbone:
    # (model section, pretrained, trainable_blocks, fpn_channels) -> the pyramid
    build: Callable[..., nn.Module]
    max_trainable_blocks: int
    blocks: str  # what trainable_blocks counts, in words


def _lite0_fpn(model, pretrained: bool, trainable_blocks: int, fpn_channels: int) -> nn.Module:
    from repmet.models.detection.lite0_fpn import Lite0FPN
    from repmet.models.factory import build_backbone

    return Lite0FPN(build_backbone(model, pretrained), fpn_channels, trainable_blocks)


def _resnet50_fpn(model, pretrained: bool, trainable_blocks: int, fpn_channels: int) -> nn.Module:
    from repmet.models.detection.resnet_fpn import resnet50_fpn

    return resnet50_fpn(model.pretrained and pretrained, model.weights if pretrained else None, trainable_blocks,
                        fpn_channels)


DETECTION_BACKBONES: Registry[DetectionBackbone] = Registry("detection backbone")
# the CPU configs' and the paper-sized GPU configs'
DETECTION_BACKBONES.register("efficientnet_lite0", DetectionBackbone(_lite0_fpn, 16, "EfficientNet-Lite0 blocks"))
DETECTION_BACKBONES.register("resnet50", DetectionBackbone(_resnet50_fpn, 5, "ResNet-50 stages"))

@dataclass(frozen=True)
class RegionBackbone:
    """A frozen ImageNet network that embeds cropped regions (``detection.region_backbone``)."""

    build: Callable[[bool], nn.Module]  # pretrained -> images [B, 3, S, S] -> features [B, feature_dim]
    model: str  # the repmet.models name whose weights and input normalisation it uses


def _lite0_stages(pretrained: bool) -> nn.Module:
    from repmet.models.detection.lite0_stage_features import Lite0StageFeatures
    from repmet.models.registry import create_model

    return Lite0StageFeatures(create_model("efficientnet_lite0", pretrained=pretrained))


def _registered(name: str) -> RegionBackbone:
    from repmet.models.registry import create_model

    return RegionBackbone(lambda pretrained: create_model(name, pretrained=pretrained), name)


REGION_BACKBONES: Registry[RegionBackbone] = Registry("region backbone")
REGION_BACKBONES.register("efficientnet_lite0", _registered("efficientnet_lite0"))  # the final pooled features
REGION_BACKBONES.register("efficientnet_lite0_stages", RegionBackbone(_lite0_stages, "efficientnet_lite0"))
