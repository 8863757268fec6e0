"""torchvision ImageNet backbones as feature extractors ``[B, 3, H, W] -> [B, F]``.

``pretrained=True`` uses torchvision's weights API (which downloads on first use);
``weights=PATH`` loads a local state dict instead, e.g. on machines without internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torchvision
from torch import nn

from repmet.errors import UserError
from repmet.models.registry import register_model


class InceptionFeatures(NamedTuple):
    """Inception-V3 in training mode: the main pooled features and the auxiliary head's."""

    features: torch.Tensor
    aux_features: torch.Tensor


class TorchvisionBackbone(nn.Module):
    def __init__(self, network: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.network = network
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)


class InceptionV3Backbone(TorchvisionBackbone):
    """Inception-V3 with its auxiliary head kept for training (as the RepMet paper trained it):
    in training mode ``forward`` returns :class:`InceptionFeatures`, in eval mode the features."""

    aux_dim = 768

    def forward(self, images: torch.Tensor):
        out = self.network(images)
        if isinstance(out, tuple):  # torchvision's InceptionOutputs(logits, aux_logits)
            return InceptionFeatures(out[0], out[1])
        return out


def load_imagenet_weights(name: str, network: nn.Module, pretrained: bool, weights: str | None) -> None:
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"model.weights: {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"model.weights: cannot load {path} as a state dict ({exc})") from None
        state = {k.removeprefix("module."): v for k, v in state.items()}
        missing, unexpected = network.load_state_dict(state, strict=False)
        if missing:
            raise UserError(f"model.weights: {path} lacks {len(missing)} tensors of {name}, e.g. {missing[0]}")
        return
    if not pretrained:
        return
    enum = torchvision.models.get_model_weights(name).DEFAULT
    try:
        state = enum.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, hash mismatch, ...
        raise UserError(
            f"could not download the ImageNet weights of {name} ({enum.url}): {exc}. On a machine without "
            f"internet, download that file elsewhere and set model.weights: /path/to/{Path(enum.url).name} "
            f"(or model.pretrained: false)") from None
    network.load_state_dict(state, strict=False)


class ResNetBackbone(TorchvisionBackbone):
    """A torchvision ResNet whose residual blocks (layer1[0] ... layer4[-1]) can be split for
    partial fine-tuning (repmet.models.partial_freeze): the bottom ``cut`` blocks and the stem
    frozen, the rest trained."""

    def _blocks(self) -> list[nn.Module]:
        n = self.network
        return [*n.layer1, *n.layer2, *n.layer3, *n.layer4]

    @property
    def num_blocks(self) -> int:
        return len(self._blocks())

    def bottom_modules(self, cut: int) -> list[nn.Module]:
        n = self.network
        return [n.conv1, n.bn1, *self._blocks()[:cut]]

    def forward_bottom(self, images: torch.Tensor, cut: int) -> torch.Tensor:
        n = self.network
        x = n.maxpool(n.relu(n.bn1(n.conv1(images))))
        for block in self._blocks()[:cut]:
            x = block(x)
        return x

    def forward_top(self, x: torch.Tensor, cut: int) -> torch.Tensor:
        for block in self._blocks()[cut:]:
            x = block(x)
        return torch.flatten(self.network.avgpool(x), 1)


def _resnet(name: str, pretrained: bool, weights: str | None) -> ResNetBackbone:
    network = getattr(torchvision.models, name)(weights=None)
    load_imagenet_weights(name, network, pretrained, weights)
    feature_dim = network.fc.in_features
    network.fc = nn.Identity()
    return ResNetBackbone(network, feature_dim)


for _name in ("resnet18", "resnet34", "resnet50"):
    register_model(_name)(lambda pretrained=False, weights=None, _n=_name, **_: _resnet(_n, pretrained, weights))


@register_model("inception_v3")
def inception_v3(pretrained: bool = False, weights: str | None = None, **_) -> InceptionV3Backbone:
    network = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    load_imagenet_weights("inception_v3", network, pretrained, weights)
    feature_dim = network.fc.in_features
    network.fc = nn.Identity()
    network.AuxLogits.fc = nn.Identity()
    return InceptionV3Backbone(network, feature_dim)
