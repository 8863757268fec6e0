"""The fine-tuning baseline of few-shot detection (TFA: Wang et al., ICML 2020, "Frustratingly
Simple Few-Shot Object Detection"): freeze the detector and fine-tune only a last layer, a
linear classifier (background + all classes) on the region embeddings of a K-shot set balanced
over base and novel classes. It runs on the same trained detector, the same regions and the same
support boxes as RepMet's enrollment, and its class posterior is combined with the same
objectness and post-processed by the same NMS, so the two differ only in how a new class enters
the classifier: a few embeddings (RepMet) or a trained linear layer (TFA)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from repmet.data.detection import SupportBox
from repmet.evaluate.detection import CachedRegions, image_regions, image_tensor, to_image_detections
from repmet.evaluate.detection_ap import ImageDetections
from repmet.models.detection.region_scoring import detections

FG_IOU = 0.5  # torchvision's RoI heads: foreground at IoU >= 0.5 with a box, background below


@torch.no_grad()
def support_region_features(model, support: dict[str, list[SupportBox]], device: torch.device,
                            regions_of: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Region embeddings ``[N, D]`` and labels ``[N]`` (0 background, 1..C the support classes in
    order) of the support images: their boxes, and the detector's regions labelled with the class
    of a support box they overlap at IoU >= 0.5, background below 0.5 with every support box of
    their image (only the K chosen boxes are annotated, as in TFA's K-shot sets). ``regions_of``:
    a dict that keeps each image's regions for the next episode that draws the image again."""
    by_image: dict = {}
    for label, boxes in enumerate(support.values(), start=1):
        for item in boxes:
            by_image.setdefault(item.image.path, (item.image, []))[1].append((item.box, label))
    features, labels = [], []
    for image, annotated in by_image.values():
        picture = image_tensor(image.path).to(device)
        if regions_of is not None and image.path in regions_of:
            regions = regions_of[image.path]
        else:
            regions = image_regions(model, picture)
            if regions_of is not None:
                regions_of[image.path] = regions
        scale = torch.tensor([regions.image_size[1] / picture.shape[2], regions.image_size[0] / picture.shape[1]] * 2,
                             device=device)
        boxes = torch.from_numpy(np.stack([b for b, _ in annotated])).float().to(device) * scale
        names = torch.as_tensor([c for _, c in annotated], device=device)
        real = regions.objectness >= 0
        overlap, match = box_iou(regions.boxes[real], boxes).max(dim=1)
        canvas = model.transform([picture])[0].tensors
        features += [regions.embeddings[real], model.region_embedder(canvas, boxes)]
        labels += [torch.where(overlap >= FG_IOU, names[match], torch.zeros_like(match)), names]
    return torch.cat(features), torch.cat(labels)


def fine_tune_linear_classifier(features: torch.Tensor, labels: torch.Tensor, classes: int, steps: int = 300,
                                lr: float = 0.01, foreground_fraction: float = 0.25, seed: int = 0) -> nn.Linear:
    """A ``Linear(F, 1 + classes)`` trained by SGD on batches with a quarter foreground (the RoI
    heads' sampling), as TFA fine-tunes its last layer."""
    generator = torch.Generator().manual_seed(seed)
    layer = nn.Linear(features.shape[1], 1 + classes)
    nn.init.normal_(layer.weight, std=0.01, generator=generator)
    nn.init.zeros_(layer.bias)
    layer = layer.to(features.device)  # initialised on the CPU: the same start on every device
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    foreground, background = torch.nonzero(labels > 0).flatten(), torch.nonzero(labels == 0).flatten()
    batch = 128
    n_fg = min(len(foreground), int(batch * foreground_fraction))
    for _ in range(steps):
        chosen = torch.cat([foreground[torch.randperm(len(foreground), generator=generator)[:n_fg]],
                            background[torch.randperm(len(background), generator=generator)[:batch - n_fg]]])
        loss = F.cross_entropy(layer(features[chosen]), labels[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return layer.eval()


@torch.no_grad()
def detect_with_linear_classifier(model, classifier: nn.Linear, cached: list[CachedRegions],
                                  label_map: list[int]) -> list[ImageDetections]:
    """Detections from cached test regions: ``P(object) * softmax(classifier)`` (its background
    column left out), then the detector's own per-class NMS."""
    out = []
    for regions in cached:
        posterior = torch.softmax(classifier(regions.embeddings), dim=1)[:, 1:]
        scores = posterior * regions.objectness.clamp_min(0.0)[:, None]
        size = model.size
        found = detections(regions.boxes, scores, regions.objectness >= 0.0, size.score_threshold, size.nms_iou,
                           size.detections_per_image, size.candidates)
        out.append(to_image_detections(model, *found[:3], int(found[3]), regions, label_map))
    return out
