"""torchvision's detection transform, padding to the exported detector's fixed canvas outside
training, so that ``metric-eval`` measures exactly what an exported artifact computes (padding
changes the features near the padded border, and adds RPN anchors there)."""

from __future__ import annotations

import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from repmet.preprocess_spec import detection_canvas_size


class CanvasTransform(GeneralizedRCNNTransform):
    """In eval mode every image is padded (bottom and right, with zeros after normalisation) to
    the square canvas :func:`repmet.preprocess_spec.detection_canvas_size` of ``max_size``;
    training batches are padded to a multiple of 32, as torchvision does."""

    def __init__(self, min_size: int, max_size: int, mean: list[float], std: list[float]) -> None:
        super().__init__(min_size, max_size, mean, std)
        self.canvas = detection_canvas_size(max_size)

    def batch_images(self, images: list[torch.Tensor], size_divisible: int = 32) -> torch.Tensor:
        if self.training:
            return super().batch_images(images, size_divisible)
        batched = images[0].new_zeros(len(images), images[0].shape[0], self.canvas, self.canvas)
        for padded, image in zip(batched, images):
            padded[:, : image.shape[1], : image.shape[2]].copy_(image)
        return batched
