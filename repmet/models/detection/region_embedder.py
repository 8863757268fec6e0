"""Region embeddings that transfer: each box is cropped from the image and embedded by a frozen
ImageNet classifier backbone, as a whole picture of its own.

Why not RoI features of the detector: a detector trained on a few base classes maps new objects
onto those classes (on fsod-mini a novel RoI was nearest to its own 5-shot prototype 28% of the
time), while the same objects cropped and embedded by the frozen ImageNet network are told apart
by their nearest class mean at 82%. A crop also puts a small object and a large one at the same
scale, which RoI pooling from one feature map cannot.

The crop is RoIAlign on the (normalised) image itself, so every export format runs it with the
op the detector already uses (ONNX ``RoiAlign``, TensorRT's ``ROIAlign_TRT``, torchvision's
``roi_align``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repmet.ops.roi_align import roi_align


class RegionEmbedder(nn.Module):
    """``image [1, 3, H, W]`` (normalised by ``image_mean`` / ``image_std``) and ``boxes [R, 4]``
    (x1, y1, x2, y2 in its pixels) -> unit vectors ``[R, D]``: each box resampled to
    ``crop_size`` squared, renormalised to what ``backbone`` was trained on, and embedded by the
    frozen ``backbone`` (images -> pooled features ``[R, D]``)."""

    def __init__(self, backbone: nn.Module, crop_size: int, sampling_ratio: int,
                 image_mean: tuple[float, ...], image_std: tuple[float, ...],
                 backbone_mean: tuple[float, ...], backbone_std: tuple[float, ...]) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self.crop_size, self.sampling_ratio = int(crop_size), int(sampling_ratio)
        # x_backbone = (x_image * image_std + image_mean - backbone_mean) / backbone_std, per channel
        image_std_t, image_mean_t = torch.tensor(image_std), torch.tensor(image_mean)
        backbone_std_t, backbone_mean_t = torch.tensor(backbone_std), torch.tensor(backbone_mean)
        self.register_buffer("scale", (image_std_t / backbone_std_t).reshape(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", ((image_mean_t - backbone_mean_t) / backbone_std_t).reshape(1, -1, 1, 1),
                             persistent=False)

    def train(self, mode: bool = True) -> "RegionEmbedder":
        super().train(mode)
        self.backbone.eval()  # frozen, BatchNorm statistics included
        return self

    def crops(self, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """``[R, 3, crop, crop]`` in the backbone's normalisation."""
        pooled = roi_align(image, boxes, self.crop_size, 1.0, self.sampling_ratio, aligned=True)
        return pooled * self.scale + self.shift

    def forward(self, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone(self.crops(image, boxes)), dim=1)
