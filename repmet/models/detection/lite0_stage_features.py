"""A region embedding from several depths of the frozen ImageNet EfficientNet-Lite0: the pooled
outputs of its last three stages (112, 192 and 320 channels) and of its 1x1 head (1280), each
unit-normalised, concatenated (1904-d).

Why: the head's features are the most ImageNet-specific; a new domain's objects (a bookcase, a
tap, a circuit board) are told apart better with the mid-level ones kept beside them. Nearest
class mean of ground-truth box crops (docs/lab_notes/crop_embedding_variants.py, 20 episodes):
indoor85-voc (27 classes) 41.4 / 59.8 -> 46.0 / 64.8 at K = 1 / 5, fsod-mini (12 classes)
34.9 / 53.7 -> 36.0 / 54.4. Equal weights: weighting the head up lost on both. It costs nothing
measurable: the stages are computed anyway, only their pooling is added."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repmet.models.efficientnet_lite import EfficientNetLite0

STAGE_ENDS = (10, 14, 15)  # the last block of the 112-, 192- and 320-channel stages


class Lite0StageFeatures(nn.Module):
    """Images ``[B, 3, H, W]`` (Lite-normalised) -> ``[B, 1904]``: the concatenated unit-length
    pooled features of blocks ``STAGE_ENDS`` and the head (the whole vector is not unit length;
    :class:`RegionEmbedder` normalises it)."""

    def __init__(self, network: EfficientNetLite0) -> None:
        super().__init__()
        self.network = network
        widths = [network._blocks[i]._project_conv.out_channels for i in STAGE_ENDS]
        self.feature_dim = sum(widths) + EfficientNetLite0.feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        net = self.network
        x = net.forward_bottom(images, STAGE_ENDS[0] + 1)  # the stem and blocks up to the first pooled stage
        parts = [F.normalize(x.mean(dim=(2, 3)), dim=1)]
        for i in range(STAGE_ENDS[0] + 1, net.num_blocks):
            x = net._blocks[i](x)
            if i in STAGE_ENDS:
                parts.append(F.normalize(x.mean(dim=(2, 3)), dim=1))
        parts.append(F.normalize(net.forward_top(x, net.num_blocks), dim=1))  # the head, pooled
        return torch.cat(parts, dim=1)
