"""ResNet-50 with a feature pyramid for the GPU-sized detector configs (the RepMet paper's
backbone family): torchvision's ``BackboneWithFPN`` over layers 2-4 (strides 8, 16, 32) plus a
max-pooled level, frozen BatchNorm as in torchvision's detection models, ImageNet weights from
torchvision's weights API (or ``model.weights: PATH`` offline)."""

from __future__ import annotations

import torchvision
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from repmet.models.torchvision_backbones import load_imagenet_weights

STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")  # from the top


def resnet50_fpn(pretrained: bool, weights: str | None, trainable_stages: int, out_channels: int) -> BackboneWithFPN:
    """``trainable_stages`` (0-5): how many stages train, from ``layer4`` down."""
    network = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    load_imagenet_weights("resnet50", network, pretrained, weights)
    trainable = STAGES[:trainable_stages]
    for name, parameter in network.named_parameters():
        parameter.requires_grad_(name.startswith(trainable) if trainable else False)
    return BackboneWithFPN(network, {"layer2": "0", "layer3": "1", "layer4": "2"}, [512, 1024, 2048], out_channels,
                           extra_blocks=LastLevelMaxPool())
