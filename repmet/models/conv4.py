"""The four-block convolutional encoder of Vinyals et al. (2016) and Snell et al. (2017)."""

from __future__ import annotations

import torch
from torch import nn

from repmet.errors import UserError
from repmet.models.registry import register_model


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """4 x [conv3x3, BatchNorm, ReLU, maxpool2], flattened.

    Input ``[B, C, H, W]``; output ``[B, out_channels * (H // 16) * (W // 16)]``
    (64 for 28x28 Omniglot images).
    """

    def __init__(self, in_channels: int = 1, hidden_channels: int = 64, out_channels: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            _conv_block(in_channels, hidden_channels),
            _conv_block(hidden_channels, hidden_channels),
            _conv_block(hidden_channels, hidden_channels),
            _conv_block(hidden_channels, out_channels),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images).flatten(1)


@register_model("conv4")
def conv4(in_channels: int = 1, hidden_channels: int = 64, out_channels: int = 64, pretrained: bool = False,
          weights: str | None = None, **_) -> Conv4:
    if pretrained or weights:
        raise UserError("conv4 has no pretrained weights; set model.pretrained: false and model.weights: null")
    return Conv4(in_channels, hidden_channels, out_channels)
