"""The few-shot detector's regions outside its forward pass: of a whole image (boxes, objectness,
crop embeddings: what a gallery is scored against) and of given boxes (the embeddings a class is
enrolled from). Shared by gallery fitting, training, evaluation and export, so it sits with the
method, below every stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torchvision.models.detection.transform import resize_boxes
from tqdm import tqdm

from repmet.data.detection import DetectionSplit, SupportBox
from repmet.imaging import open_rgb
from repmet.ops.kmeans import padded_centres


def image_tensor(path) -> torch.Tensor:
    return TF.to_tensor(open_rgb(path))


@dataclass
class CachedRegions:
    boxes: torch.Tensor  # [N, 4] in the resized image
    objectness: torch.Tensor  # [N], INVALID on padding rows
    embeddings: torch.Tensor  # [N, D]
    image_size: tuple[int, int]  # resized (h, w)
    original_size: tuple[int, int]


@torch.no_grad()
def image_regions(model, picture: torch.Tensor) -> CachedRegions:
    """One image's regions, as ``RepMetFasterRCNN.forward`` computes them."""
    batch, _ = model.transform([picture])
    return canvas_regions(model, batch, tuple(picture.shape[-2:]))


@torch.no_grad()
def canvas_regions(model, batch, original_size: tuple[int, int]) -> CachedRegions:
    """The regions of the one image in ``batch`` (``model.transform``'s output)."""
    features = model.backbone(batch.tensors)
    proposals, _ = model.rpn(batch, features)
    rois = proposals[0]
    size = torch.tensor(batch.image_sizes[0], dtype=torch.float32, device=rois.device)
    valid = torch.ones(len(rois), dtype=torch.bool, device=rois.device)
    boxes, objectness, embeddings = model.regions(features, rois, valid, batch.tensors, size)
    return CachedRegions(boxes, objectness, embeddings, tuple(batch.image_sizes[0]), original_size)


def to_canvas(boxes, original_size: tuple[int, int], canvas_size: tuple[int, int], device) -> torch.Tensor:
    """Boxes ``[N, 4]`` in an image's own pixels -> the resized image that the model sees
    (``model.transform``'s scaling, which the detector's outputs undo)."""
    return resize_boxes(torch.as_tensor(np.asarray(boxes), dtype=torch.float32, device=device).reshape(-1, 4),
                        list(original_size), list(canvas_size))


@torch.no_grad()
def cache_regions(model, split: DetectionSplit, device: torch.device, progress: bool) -> list[CachedRegions]:
    return [image_regions(model, image_tensor(image.path).to(device))
            for image in tqdm(split.images, desc="regions and their embeddings", disable=not progress, leave=False)]


@torch.no_grad()
def embed_boxes(model, support: list[SupportBox], device: torch.device) -> torch.Tensor:
    """``[N, D]`` region embeddings of boxes, cropped from their images as the detector crops its
    regions (each image decoded and resized once, however many of the boxes it holds)."""
    by_image: dict = {}
    for row, item in enumerate(support):
        by_image.setdefault(item.image.path, []).append(row)
    rows: list = [None] * len(support)
    for path, members in by_image.items():
        picture = image_tensor(path).to(device)
        batch, _ = model.transform([picture])
        boxes = to_canvas([support[m].box for m in members], tuple(picture.shape[-2:]), batch.image_sizes[0], device)
        for m, embedding in zip(members, model.region_embedder(batch.tensors, boxes)):
            rows[m] = embedding
    return torch.stack(rows)


def enrolled_representatives(model, support: dict[str, list[SupportBox]], k: int, seed: int,
                             device: torch.device, centres: int | None = None) -> torch.Tensor:
    """``[N, K, D]``: each class's support embeddings, k-means'd to ``centres`` (default K) and
    padded to K (:func:`repmet.ops.kmeans.padded_centres`)."""
    return torch.stack([padded_centres(embed_boxes(model, boxes, device), centres or k, k, seed=seed + position)
                        for position, boxes in enumerate(support.values())])
