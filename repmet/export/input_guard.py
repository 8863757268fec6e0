"""TorchScript graphs that refuse an image of another shape than they were traced with.

A traced CNN runs on any image size, so a ``metadata.json`` edited to ask for 4096 x 4096 inputs
(consistently with itself, its fingerprint recomputed) made the TorchScript backends run a 28 x 28
network on 16 megapixels: 30 s and 8.8 GB before the embedding size gave it away. ONNX and
AOTInductor graphs carry their input shape; these wrappers give TorchScript the same check, in the
graph file itself, so neither runtime has to trust the metadata for it."""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn


class _ShapeGuard(nn.Module):
    def __init__(self, graph: nn.Module, image_shape: List[int]):
        super().__init__()
        self.graph = graph
        self.image_shape = image_shape  # [channels, height, width]; any batch size

    def check(self, image: Tensor) -> None:
        if image.dim() != 4 or image.shape[1:] != self.image_shape:
            raise RuntimeError(f"this graph takes images [N, {self.image_shape[0]}, {self.image_shape[1]}, "
                               f"{self.image_shape[2]}], got {list(image.shape)}")


class GuardedImageGraph(_ShapeGuard):
    """``graph(image) -> embeddings``."""

    def forward(self, image: Tensor) -> Tensor:
        self.check(image)
        return self.graph(image)


class GuardedBoxGraph(_ShapeGuard):
    """``graph(image, boxes) -> embeddings`` (the detector's box embedding)."""

    def forward(self, image: Tensor, boxes: Tensor) -> Tensor:
        self.check(image)
        return self.graph(image, boxes)


class GuardedDetectionGraph(_ShapeGuard):
    """``graph(image, image_size, representatives) -> (boxes, scores, labels, count)``."""

    def forward(self, image: Tensor, image_size: Tensor,
                representatives: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        self.check(image)
        return self.graph(image, image_size, representatives)


def guarded(traced: torch.jit.ScriptModule, guard: type[_ShapeGuard], image_shape) -> torch.jit.ScriptModule:
    """``traced`` behind a shape check, scripted and frozen."""
    return torch.jit.freeze(torch.jit.script(guard(traced, [int(v) for v in image_shape]).eval()))
