"""The trained detector as fixed-shape graphs for export: every shape is known from the canvas
size, so the graphs trace to ONNX (and parse in TensorRT) without data-dependent shapes.

``DetectionGraph``: ``image [1, 3, S, S]`` (normalised, resized as torchvision's
``GeneralizedRCNNTransform`` does and zero-padded at the bottom and right to the S x S canvas),
``image_size [2]`` (the resized image's height and width inside the canvas) and the gallery
``representatives [C, K, D]`` -> ``boxes [N, 4]`` (in the resized image's pixels), ``scores [N]``,
``labels [N]`` (1..C; 0 on padding rows) and ``count [1]``, the rows that hold detections (best
first). ``BoxEmbeddingGraph``: ``image``, ``boxes [M, 4]`` -> ``embeddings [M, D]``, what
enrollment needs.

After the proposals, the graph runs the model's own code (``RepMetFasterRCNN.regions`` and
``.detect``, already written with fixed shapes: masks, top-k and sorting instead of boolean
indexing; RoIAlign through :func:`repmet.ops.roi_align.roi_align`, which exports to ONNX's
RoiAlign or TensorRT's ROIAlign_TRT plugin, for the FPN pooling and the region crops alike). The
proposal stage is rewritten here without data-dependent shapes: a proposal that eager
torchvision drops gets the score -1 and sorts behind every real one.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers

from repmet.models.detection import RepMetFasterRCNN
from repmet.models.detection.region_scoring import INVALID, clip_to_image, kept_by_nms, too_small


class ProposalStage(nn.Module):
    """``image``, ``image_size`` -> the backbone's maps and the RPN's ``rois [P, 4]`` with
    ``valid [P]``, P = the RPN's post-NMS count, best first."""

    def __init__(self, model: RepMetFasterRCNN, canvas: int) -> None:
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


class RegionStage(nn.Module):
    """Proposals -> regions (box head, class-agnostic NMS, crop embeddings) -> scores against the
    gallery -> per-class NMS -> the fixed-size detections: ``RepMetFasterRCNN.regions`` and
    ``.detect``, the code eager PyTorch runs."""

    def __init__(self, model: RepMetFasterRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: dict[str, torch.Tensor], rois: torch.Tensor, valid: torch.Tensor,
                image: torch.Tensor, image_size: torch.Tensor,
                representatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        boxes, objectness, embeddings = self.model.regions(features, rois, valid, image, image_size)
        return self.model.detect(boxes, objectness, embeddings, representatives)


class DetectionGraph(nn.Module):
    """Two stages, as named modules so that profiles split by them (ONNX node names start
    with ``/proposals/`` or ``/boxes/``)."""

    def __init__(self, model: RepMetFasterRCNN, canvas: int) -> None:
        super().__init__()
        model = model.eval()
        self.proposals = ProposalStage(model, canvas)
        self.boxes = RegionStage(model)

    def forward(self, image: torch.Tensor, image_size: torch.Tensor,
                representatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        features, rois, valid = self.proposals(image, image_size)
        return self.boxes(features, rois, valid, image, image_size, representatives)


def example_inputs(model: RepMetFasterRCNN, canvas: int) -> tuple[tuple, tuple]:
    """What the exporters trace the two graphs with: ``(image, image_size, representatives)`` (the
    trained gallery) and ``(image, boxes)``."""
    # a copy: a view of the model's buffer cannot carry a dynamic size into torch.export
    representatives = model.region_gallery.gallery().detach().clone()
    image = torch.zeros(1, 3, canvas, canvas)
    image_size = torch.tensor([float(canvas), float(canvas)])
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 96.0, 64.0]])
    return (image, image_size, representatives), (image, boxes)


class BoxEmbeddingGraph(nn.Module):
    """``image [1, 3, S, S]``, ``boxes [M, 4]`` (resized image pixels) -> ``embeddings [M, D]``:
    the region embedding the detector classifies, what enrollment needs."""

    def __init__(self, model: RepMetFasterRCNN) -> None:
        super().__init__()
        self.region_embedder = model.eval().region_embedder

    def forward(self, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return self.region_embedder(image, boxes)
