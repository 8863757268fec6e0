"""How the detector turns regions into detections, written once with fixed shapes, so that eager
PyTorch, ``metric-eval`` and every exported graph run the same code.

The rule (README, "Scores"): a region's score for class c is

    P(object)^p * P(c | crop),

where P(object) is the class-agnostic box head's objectness (p: ``detection.objectness_power``,
1 by default; below 1 it weighs less, see the README) and P(c | crop) is RepMet's posterior
over the enrolled classes *and background*: ``softmax([b, l_1 .. l_C])`` with
``l_c = -min_k d(x, r_ck) / (2 sigma^2)`` (squared Euclidean distances of unit vectors) and the
background logit ``b`` computed the same way from background representatives that base training
collects from regions that overlap no object. A region near no enrolled class is thus claimed by
background, and one object next to a similar class splits its mass between the two, instead of
every class scoring 1 as in an unnormalised posterior. Then per-class NMS keeps one box an object.

Shapes never depend on the data: what eager code would drop gets the score ``INVALID`` and sorts
behind every real candidate (masks and top-k instead of boolean indexing)."""

from __future__ import annotations

import torch
from torchvision.ops import nms

from repmet.ops.distances import squared_euclidean
from repmet.ops.posterior import class_logits

INVALID = -1.0  # the score of a region or detection that eager code would have dropped


def clip_to_image(boxes: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
    """``boxes [N, 4]`` clipped to ``image_size [2]`` (height, width)."""
    height, width = image_size[0], image_size[1]
    x = torch.minimum(boxes[:, 0::2].clamp_min(0.0), width)
    y = torch.minimum(boxes[:, 1::2].clamp_min(0.0), height)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


def too_small(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    return ((boxes[:, 2] - boxes[:, 0]) < min_size) | ((boxes[:, 3] - boxes[:, 1]) < min_size)


def kept_by_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou: float) -> torch.Tensor:
    """``[B]`` bool: what per-group NMS keeps (torchvision's coordinate trick: groups are moved
    apart so that one NMS never compares boxes of two groups). Membership is tested by
    comparison rather than scattered, for TensorRT."""
    offsets = groups.to(boxes) * (boxes.max() + 1.0)
    keep = nms(boxes + offsets[:, None], scores, iou)
    return (torch.arange(boxes.shape[0], device=boxes.device)[:, None] == keep[None, :]).any(dim=1)


def select_regions(boxes: torch.Tensor, objectness: torch.Tensor, valid: torch.Tensor, count: int,
                   nms_iou: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` most object-like regions after class-agnostic NMS: ``boxes [N, 4]``,
    ``objectness [N]`` (``INVALID`` where eager code has no region; N = min(count, R))."""
    scores = torch.where(valid & ~too_small(boxes, 1e-2), objectness, torch.full_like(objectness, INVALID))
    scores = torch.where(kept_by_nms(boxes, scores, torch.zeros_like(scores), nms_iou), scores,
                         torch.full_like(scores, INVALID))
    best = scores.topk(min(count, scores.shape[0]))
    return boxes[best.indices], best.values


def class_scores(embeddings: torch.Tensor, objectness: torch.Tensor, representatives: torch.Tensor,
                 background: torch.Tensor, sigma: float, objectness_power: float = 1.0) -> torch.Tensor:
    """``embeddings [N, D]`` (unit), ``objectness [N]``, ``representatives [C, K, D]``,
    ``background [B, D]`` -> ``[N, C]``: P(object)^p * P(c | crop) (the module docstring)."""
    n, (c, k, d) = embeddings.shape[0], representatives.shape
    to_classes = squared_euclidean(embeddings, representatives.reshape(c * k, d)).reshape(n, c, k)
    to_background = squared_euclidean(embeddings, background)[:, None, :]  # [N, 1, B]
    logits = torch.cat([class_logits(to_background, sigma), class_logits(to_classes, sigma)], dim=1)
    posterior = torch.softmax(logits, dim=1)[:, 1:]
    weight = objectness.clamp_min(0.0)
    if objectness_power != 1.0:  # a constant of the exported graphs: they hold a Pow only when it is used
        weight = torch.where(objectness >= 0.0, weight ** objectness_power, torch.zeros_like(weight))  # 0^0 = 1
    return posterior * weight[:, None]


def detections(boxes: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, score_threshold: float,
               nms_iou: float, max_detections: int, candidates: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Regions ``boxes [N, 4]`` with ``scores [N, C]`` -> per-class NMS -> ``boxes [M, 4]``,
    ``scores [M]``, ``labels [M]`` (1..C; 0 on padding rows), ``count [1]``, M = ``max_detections``,
    best first. ``candidates`` bounds the (region, class) pairs that reach NMS."""
    device = boxes.device
    n, classes = scores.shape
    flat_boxes = boxes[:, None, :].expand(n, classes, 4).reshape(-1, 4)
    labels = (torch.arange(classes, device=device) + 1)[None, :].expand(n, classes).reshape(-1)
    keep = (scores > score_threshold) & valid[:, None]
    flat = torch.where(keep.reshape(-1), scores.reshape(-1), torch.full_like(scores.reshape(-1), INVALID))
    # padding keeps the count at least `candidates` (and `max_detections`)
    pad = max(candidates, max_detections)
    flat = torch.cat([flat, torch.full((pad,), INVALID, device=device)])
    flat_boxes = torch.cat([flat_boxes, torch.zeros(pad, 4, device=device)])
    labels = torch.cat([labels, torch.zeros(pad, dtype=labels.dtype, device=device)])
    best = flat.topk(candidates).indices
    flat_boxes, flat, labels = flat_boxes[best], flat[best], labels[best]
    flat = torch.where(kept_by_nms(flat_boxes, flat, labels, nms_iou), flat, torch.full_like(flat, INVALID))
    final = flat.topk(max_detections)
    found = final.values > INVALID
    return (flat_boxes[final.indices] * found[:, None], final.values.clamp_min(0.0), labels[final.indices] * found,
            found.sum().reshape(1))
