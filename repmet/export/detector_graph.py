"""The trained detector as fixed-shape graphs for export: every shape is known from the canvas
size, so the graphs trace to ONNX (and parse in TensorRT) without data-dependent shapes.

``DetectionGraph``: ``image [1, 3, S, S]`` (normalised, resized as torchvision's
``GeneralizedRCNNTransform`` does and zero-padded at the bottom and right to the S x S canvas),
``image_size [2]`` (the resized image's height and width inside the canvas) and the gallery
``representatives [C, K, D]`` -> ``boxes [N, 4]`` (in the resized image's pixels), ``scores [N]``,
``labels [N]`` (1..C; 0 on padding rows) and ``count [1]``, the rows that hold detections (best
first). ``BoxEmbeddingGraph``: ``image``, ``boxes [M, 4]`` -> ``embeddings [M, D]``, what
enrollment needs.

Differences from eager torchvision, all by construction rather than approximation:
- top-k, masks and sorting replace boolean indexing: a proposal or detection that eager code
  drops gets the score -1 here and sorts behind every real one;
- RoI pooling pools every RoI at every FPN level and keeps its own level's result (no NonZero
  or scatter), through :func:`repmet.ops.roi_align.roi_align`, which exports to ONNX's RoiAlign
  or TensorRT's ROIAlign_TRT plugin;
- the box classifier's candidates (RoIs x classes) are cut to the best ``candidates`` before
  NMS (TensorRT's NMS layer considers at most 5000 boxes); a detection ranked lower than that
  among all candidates is lost, which the export's verification would count.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import nms

from repmet.ops.posterior import detection_logits
from repmet.ops.roi_align import roi_align

INVALID = -1.0  # the score of a proposal or detection that eager code would have dropped


def clip_to_image(boxes: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
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


class _PooledFeatures(nn.Module):
    """Backbone maps + RoIs -> box-head features ``[R, F]``, torchvision's MultiScaleRoIAlign
    without data-dependent indexing."""

    def __init__(self, model: GeneralizedRCNN) -> None:
        super().__init__()
        pool = model.roi_heads.box_roi_pool
        self.box_head = model.roi_heads.box_head
        self.names = list(pool.featmap_names)
        self.output_size = int(pool.output_size[0])
        self.sampling_ratio = int(pool.sampling_ratio)
        self.scales, self.mapper = list(pool.scales), pool.map_levels  # fixed at build: fix_pool_scales

    def forward(self, maps: dict[str, torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        level = self.mapper([rois])
        pooled = torch.zeros(())
        for index, (name, scale) in enumerate(zip(self.names, self.scales)):
            at_level = roi_align(maps[name], rois, self.output_size, scale, self.sampling_ratio, aligned=False)
            pooled = pooled + at_level * (level == index).to(at_level)[:, None, None, None]
        return self.box_head(pooled)


class ProposalStage(nn.Module):
    """``image``, ``image_size`` -> the backbone's maps and the RPN's ``rois [P, 4]`` with
    ``valid [P]``, P = the RPN's post-NMS count, best first."""

    def __init__(self, model: GeneralizedRCNN, canvas: int) -> None:
        super().__init__()
        rpn = model.rpn
        self.backbone, self.rpn_head, self.rpn_coder = model.backbone, rpn.head, rpn.box_coder
        with torch.no_grad():
            maps = list(model.backbone(torch.zeros(1, 3, canvas, canvas)).values())
            anchors = rpn.anchor_generator(ImageList(torch.zeros(1, 3, canvas, canvas), [(canvas, canvas)]), maps)[0]
        per_level = [m.shape[-2] * m.shape[-1] * rpn.head.cls_logits.out_channels for m in maps]
        self.register_buffer("anchors", anchors, persistent=False)
        self.level_spans = [(sum(per_level[:i]), n) for i, n in enumerate(per_level)]
        self.pre_nms, self.post_nms = rpn._pre_nms_top_n["testing"], rpn._post_nms_top_n["testing"]
        self.nms_thresh, self.min_size = rpn.nms_thresh, rpn.min_size

    def forward(self, image: torch.Tensor,
                image_size: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        features = self.backbone(image)
        objectness, deltas = self.rpn_head(list(features.values()))
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        objectness = objectness.flatten()
        picked, levels = [], []
        for level, (start, count) in enumerate(self.level_spans):
            top = objectness[start:start + count].topk(min(self.pre_nms, count)).indices + start
            picked.append(top)
            levels.append(torch.full_like(top, level))
        picked, levels = torch.cat(picked), torch.cat(levels)
        boxes = clip_to_image(self.rpn_coder.decode_single(deltas[picked], self.anchors[picked]), image_size)
        scores = torch.sigmoid(objectness[picked])
        scores = torch.where(too_small(boxes, self.min_size), torch.full_like(scores, INVALID), scores)
        scores = torch.where(kept_by_nms(boxes, scores, levels, self.nms_thresh), scores,
                             torch.full_like(scores, INVALID))
        best = scores.topk(min(self.post_nms, scores.shape[0]))
        return features, boxes[best.indices], best.values > INVALID


class BoxStage(nn.Module):
    """The RoI head on the proposals: pooling, the RepMet distance head, box regression,
    per-class NMS -> the fixed-size detections."""

    def __init__(self, model: GeneralizedRCNN, max_detections: int | None, candidates: int) -> None:
        super().__init__()
        heads = model.roi_heads
        self.pooled = _PooledFeatures(model)
        self.predictor, self.box_coder = heads.box_predictor, heads.box_coder
        self.score_thresh, self.nms_thresh = heads.score_thresh, heads.nms_thresh
        self.max_detections = max_detections or heads.detections_per_img
        self.candidates = candidates

    def forward(self, features: dict[str, torch.Tensor], rois: torch.Tensor, valid: torch.Tensor,
                image_size: torch.Tensor,
                representatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        device = rois.device
        box_features = self.pooled(features, rois)
        classes = representatives.shape[0]
        logits = detection_logits(self.predictor.distances(box_features, representatives), self.predictor.sigma)
        scores = torch.softmax(logits, dim=1)[:, 1:]  # [R, C]
        boxes = clip_to_image(self.box_coder.decode_single(self.predictor.bbox_pred(box_features.flatten(1)), rois),
                              image_size)
        # candidates: every RoI x class, as torchvision's postprocess_detections
        rois_count = rois.shape[0]
        boxes = boxes[:, None, :].expand(rois_count, classes, 4).reshape(-1, 4)
        labels = (torch.arange(classes, device=device) + 1)[None, :].expand(rois_count, classes).reshape(-1)
        keep = (scores > self.score_thresh) & valid[:, None]
        scores = torch.where(keep.reshape(-1) & ~too_small(boxes, 1e-2), scores.reshape(-1),
                             torch.full_like(scores.reshape(-1), INVALID))
        # best candidates first; padding keeps the count at least `candidates`
        scores = torch.cat([scores, torch.full((self.candidates,), INVALID, device=device)])
        boxes = torch.cat([boxes, torch.zeros(self.candidates, 4, device=device)])
        labels = torch.cat([labels, torch.zeros(self.candidates, dtype=labels.dtype, device=device)])
        best = scores.topk(self.candidates).indices
        boxes, scores, labels = boxes[best], scores[best], labels[best]
        scores = torch.where(kept_by_nms(boxes, scores, labels, self.nms_thresh), scores,
                             torch.full_like(scores, INVALID))
        final = scores.topk(self.max_detections)
        found = final.values > INVALID
        count = found.sum().reshape(1)
        return (boxes[final.indices] * found[:, None], final.values.clamp_min(0.0),
                labels[final.indices] * found, count)


class DetectionGraph(nn.Module):
    """Two stages, as named modules so that profiles split by them (ONNX node names start
    with ``/proposals/`` or ``/boxes/``)."""

    def __init__(self, model: GeneralizedRCNN, canvas: int, max_detections: int | None = None,
                 candidates: int = 2000) -> None:
        super().__init__()
        model = model.eval()
        self.proposals = ProposalStage(model, canvas)
        self.boxes = BoxStage(model, max_detections, candidates)

    def forward(self, image: torch.Tensor, image_size: torch.Tensor,
                representatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        features, rois, valid = self.proposals(image, image_size)
        return self.boxes(features, rois, valid, image_size, representatives)


def example_inputs(model: GeneralizedRCNN, canvas: int) -> tuple[tuple, tuple]:
    """What the exporters trace the two graphs with: ``(image, image_size, representatives)`` (the
    trained gallery) and ``(image, boxes)``."""
    predictor = model.roi_heads.box_predictor
    # a copy: a view of the model's parameter cannot carry a dynamic size into torch.export
    representatives = predictor.representatives.detach().reshape(predictor.num_classes, predictor.reps_per_class,
                                                                  -1).clone()
    image = torch.zeros(1, 3, canvas, canvas)
    image_size = torch.tensor([float(canvas), float(canvas)])
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 96.0, 64.0]])
    return (image, image_size, representatives), (image, boxes)


class BoxEmbeddingGraph(nn.Module):
    """``image [1, 3, S, S]``, ``boxes [M, 4]`` (resized image pixels) -> ``embeddings [M, D]``."""

    def __init__(self, model: GeneralizedRCNN) -> None:
        super().__init__()
        model = model.eval()
        self.backbone = model.backbone
        self.pooled = _PooledFeatures(model)
        self.embedding = model.roi_heads.box_predictor.embedding

    def forward(self, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.pooled(self.backbone(image), boxes).flatten(1))
