"""EfficientNet-Lite0 with a feature pyramid, as a torchvision detection backbone: the outputs of
its stride-8, -16 and -32 stages (40, 112 and 320 channels) feed an FPN (plus a max-pooled level),
as torchvision's MobileNet and ResNet FPN backbones do."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from repmet.models.efficientnet_lite import EfficientNetLite0

STAGE_ENDS = (4, 10, 15)  # last block of the stride-8, -16 and -32 stages
STAGE_CHANNELS = (40, 112, 320)


class Lite0FPN(nn.Module):
    """``images [B, 3, H, W]`` -> ``OrderedDict`` of FPN maps ``"0"`` (stride 8), ``"1"`` (16),
    ``"2"`` (32) and ``"pool"`` (64), each with ``out_channels`` channels. ``trainable_blocks``:
    how many of the 16 blocks (from the top) train; the rest, and their BatchNorm statistics, stay
    as ImageNet left them."""

    def __init__(self, body: EfficientNetLite0, out_channels: int = 128, trainable_blocks: int = 0) -> None:
        super().__init__()
        self.body = body
        self.out_channels = out_channels
        self.fpn = FeaturePyramidNetwork(list(STAGE_CHANNELS), out_channels, extra_blocks=LastLevelMaxPool())
        self.frozen_modules = body.bottom_modules(body.num_blocks - trainable_blocks)
        for module in self.frozen_modules:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        for parameter in [*body._conv_head.parameters(), *body._bn1.parameters()]:  # unused by detection
            parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> "Lite0FPN":
        super().train(mode)
        for module in self.frozen_modules:
            module.eval()  # frozen BatchNorm keeps its statistics
        return self

    def forward(self, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        body = self.body
        x = F.relu6(body._bn0(body._conv_stem(images)))
        stages = OrderedDict()
        for index, block in enumerate(body._blocks):
            x = block(x)
            if index in STAGE_ENDS:
                stages[str(len(stages))] = x
        return self.fpn(stages)
