"""Two sets of detections of the same image compared one to one: how many of the reference's
detections have no counterpart (same label, IoU at least ``iou``, score within
``score_tolerance``). What export verification, the runtime's parity checks and the GPU tests
count."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes [N, 4], scores [N], labels [N]


def unmatched_detections(reference: Detections, candidate: Detections, iou: float = 0.99,
                         score_tolerance: float = 1e-3) -> tuple[int, int]:
    """``(len(reference), reference detections without a counterpart in candidate)``."""
    ref_boxes, ref_scores, ref_labels = (np.asarray(a) for a in reference)
    boxes, scores, labels = (np.asarray(a) for a in candidate)
    if len(ref_boxes) == 0:
        return 0, 0
    overlaps = box_iou(torch.as_tensor(ref_boxes, dtype=torch.float32).reshape(-1, 4),
                       torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)).numpy()
    missing = 0
    for row, score, label in zip(overlaps, ref_scores, ref_labels):
        same = (labels == label) & (row >= iou)
        if not same.any() or np.abs(scores[same] - score).min() > score_tolerance:
            missing += 1
    return len(ref_boxes), missing
