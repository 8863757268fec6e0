"""The fine-tuning baseline of few-shot detection (TFA: Wang et al., ICML 2020, "Frustratingly
Simple Few-Shot Object Detection"): freeze the detector and fine-tune only a last layer, a
linear classifier (background + all classes) on the region embeddings of a K-shot set balanced
over base and novel classes. It runs on the same trained detector, the same regions and the same
support boxes as RepMet's enrollment, and its class posterior is combined with the same
objectness and post-processed by the same NMS, so the two differ only in how a new class enters
the classifier: a few embeddings (RepMet) or a trained linear layer (TFA)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from repmet.data.detection import SupportBox
from repmet.evaluate.region_detections import to_image_detections
from repmet.methods.detector_regions import CachedRegions, canvas_regions, image_tensor, to_canvas
from repmet.evaluate.detection_ap import ImageDetections
from repmet.models.detection.region_scoring import detections

FG_IOU = 0.5  # torchvision's RoI heads: foreground at IoU >= 0.5 with a box, background below


@torch.no_grad()
def support_region_features(model, support: dict[str, list[SupportBox]], device: torch.device,
                            cache: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Region embeddings ``[N, D]`` and labels ``[N]`` (0 background, 1..C the support classes in
    order) of the support images: their boxes, and the detector's regions labelled with the class
    of a support box they overlap at IoU >= 0.5, background below 0.5 with every support box of
    their image (only the K chosen boxes are annotated, as in TFA's K-shot sets). ``cache``: a dict
    that keeps each image's regions and box embeddings for the next episode that draws it again."""
    by_image: dict = {}
    for label, boxes in enumerate(support.values(), start=1):
        for item in boxes:
            by_image.setdefault(item.image.path, []).append((item.box, label))
    features, labels = [], []
    for path, annotated in by_image.items():
        regions, box_embeddings, canvas_boxes = _support_image(model, path, [b for b, _ in annotated], device,
                                                               {} if cache is None else cache)
        names = torch.as_tensor([c for _, c in annotated], device=device)
        real = regions.objectness >= 0
        overlap, match = box_iou(regions.boxes[real], canvas_boxes).max(dim=1)
        features += [regions.embeddings[real], box_embeddings]
        labels += [torch.where(overlap >= FG_IOU, names[match], torch.zeros_like(match)), names]
    return torch.cat(features), torch.cat(labels)


def _support_image(model, path, boxes: list, device: torch.device, cache: dict
                   ) -> tuple[CachedRegions, torch.Tensor, torch.Tensor]:
    """An image's regions, the embeddings ``[M, D]`` of its ``boxes`` and those boxes on the
    model's canvas; the image is decoded and resized only when the cache lacks one of them."""
    regions, embedded = cache.get(path, (None, {}))
    missing = [b for b in boxes if tuple(b) not in embedded]
    if regions is None or missing:
        picture = image_tensor(path).to(device)
        batch, _ = model.transform([picture])
        if regions is None:
            regions = canvas_regions(model, batch, tuple(picture.shape[-2:]))
        if missing:
            canvas = to_canvas(missing, regions.original_size, regions.image_size, device)
            embedded.update(zip((tuple(b) for b in missing), model.region_embedder(batch.tensors, canvas)))
        cache[path] = (regions, embedded)
    canvas_boxes = to_canvas(boxes, regions.original_size, regions.image_size, device)
    return regions, torch.stack([embedded[tuple(b)] for b in boxes]), canvas_boxes


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
