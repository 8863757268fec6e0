"""Detections from cached regions (:class:`repmet.methods.detector_regions.CachedRegions`), in
the image's own pixels: a gallery's scoring reruns on regions computed once (RepMet's and the
fine-tuned baseline's alike)."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes

from repmet.data.detection import DetectionSplit
from repmet.evaluate.detection_ap import ImageDetections
from repmet.methods.detector_regions import CachedRegions


@torch.no_grad()
def detect_cached(model, cached: list[CachedRegions], representatives: torch.Tensor,
                  label_map: list[int]) -> list[ImageDetections]:
    """Detections from cached regions against ``representatives [C, K, D]``; labels are mapped
    from the gallery's 1..C to dataset class indices ``label_map[c - 1]``."""
    out = []
    for regions in cached:
        boxes, scores, labels, count = model.detect(regions.boxes, regions.objectness, regions.embeddings,
                                                    representatives.to(regions.embeddings))
        out.append(to_image_detections(model, boxes, scores, labels, int(count), regions, label_map))
    return out


def to_image_detections(model, boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, count: int,
                        regions: CachedRegions, label_map: list[int]) -> ImageDetections:
    """The first ``count`` detections, boxes mapped back to the image's own pixels."""
    (result,) = model.transform.postprocess([{"boxes": boxes[:count], "scores": scores[:count],
                                              "labels": labels[:count]}], [regions.image_size],
                                            [regions.original_size])
    return ImageDetections(result["boxes"].cpu().numpy(), result["scores"].cpu().numpy(),
                           torch.tensor(label_map, dtype=torch.int64)[result["labels"].cpu() - 1].numpy())


def region_recall(cached: list[CachedRegions], split: DetectionSplit, classes: list[int], iou: float = 0.5) -> float:
    """The fraction of the (non-difficult) boxes of ``classes`` that some region overlaps at
    ``iou`` or more: what no classifier can find is lost before it."""
    from torchvision.ops import box_iou

    found = total = 0
    for regions, image in zip(cached, split.images):
        wanted = np.isin(image.labels, classes) & ~image.difficult
        if not wanted.any():
            continue
        boxes = resize_boxes(regions.boxes[regions.objectness >= 0].cpu(), list(regions.image_size),
                             list(regions.original_size))
        truth = torch.as_tensor(image.boxes[wanted], dtype=torch.float32)
        total += len(truth)
        if len(boxes):
            found += int((box_iou(truth, boxes).max(dim=1).values >= iou).sum())
    return found / max(total, 1)
