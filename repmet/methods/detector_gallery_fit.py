"""The last step of the detector's base training: the gallery it ships with, in the region
embedding space. Base classes get K representatives each (k-means of the crop embeddings of up to
``boxes_per_class`` of their training boxes, as RepMet's representatives summarise a class), and
background gets B representatives: k-means of the embeddings of the detector's own regions that
overlap no box (IoU < 0.3 with every object and ignore region) in ``background_images`` training
images. Background competes with the classes in every region's posterior
(:mod:`repmet.models.detection.region_scoring`), so a region like none of the enrolled classes is
claimed by it instead of by the nearest class."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou
from tqdm import tqdm

from repmet.data.detection import BaseTrainingImage
from repmet.methods.detector_regions import canvas_regions, image_tensor, to_canvas
from repmet.ops.kmeans import padded_centres

BACKGROUND_IOU = 0.3
BACKGROUND_REGIONS_PER_IMAGE = 20


@torch.no_grad()
def fit_region_gallery(model, images: list[BaseTrainingImage], num_classes: int, boxes_per_class: int,
                       background_images: int, seed: int, device: torch.device, progress: bool = True) -> None:
    """Set ``model.region_gallery``'s representatives ``[num_classes, K, D]`` and background."""
    model.eval()
    gallery = model.region_gallery
    rng = np.random.default_rng([seed, 7])
    # (image index, box index) of every base box, then up to boxes_per_class of each class
    chosen = []
    for c in range(num_classes):
        pool = [(i, j) for i, image in enumerate(images) for j, label in enumerate(image.labels) if label == c]
        if not pool:
            raise ValueError(f"base class {c} has no training box")
        picks = rng.choice(len(pool), size=min(boxes_per_class, len(pool)), replace=False)
        chosen += [(pool[p][0], pool[p][1], c) for p in sorted(picks)]
    by_image: dict[int, list[tuple[int, int]]] = {}
    for i, j, c in chosen:
        by_image.setdefault(i, []).append((j, c))
    background_picks = set(rng.choice(len(images), size=min(background_images, len(images)), replace=False).tolist())
    embeddings = {c: [] for c in range(num_classes)}
    background = []
    todo = sorted(set(by_image) | background_picks)
    for i in tqdm(todo, desc="fitting the region gallery", disable=not progress, leave=False):
        image = images[i]
        picture = image_tensor(image.path).to(device)
        batch, _ = model.transform([picture])
        original, canvas = tuple(picture.shape[-2:]), batch.image_sizes[0]
        if i in by_image:
            boxes = to_canvas(image.boxes[[j for j, _ in by_image[i]]], original, canvas, device)
            for (_, c), e in zip(by_image[i], model.region_embedder(batch.tensors, boxes)):
                embeddings[c].append(e)
        if i in background_picks:
            regions = canvas_regions(model, batch, original)
            known = to_canvas(np.concatenate([image.boxes, image.ignore]), original, canvas, device)
            free = regions.objectness >= 0
            if len(known):
                free &= box_iou(regions.boxes, known).max(dim=1).values < BACKGROUND_IOU
            background.append(regions.embeddings[free][:BACKGROUND_REGIONS_PER_IMAGE])
    k = gallery.reps_per_class
    reps = []
    for c in range(num_classes):
        rows = torch.stack(embeddings[c])
        reps.append(_centres(rows, k, seed + c))
    gallery.set_representatives(torch.stack(reps))
    gallery.set_background(_centres(torch.cat(background), gallery.background.shape[0], seed))


def _centres(rows: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """``[k, D]`` unit vectors: k-means centres of ``rows``, padded to k."""
    return torch.nn.functional.normalize(padded_centres(rows, k, k, seed=seed), dim=1)
