"""The few-shot detector: torchvision's Faster R-CNN composition (backbone + FPN, RPN, multi-scale
RoIAlign, two-layer box head) whose box classifier is the RepMet distance head."""

from __future__ import annotations

from dataclasses import dataclass

import math

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import initLevelMapper

from repmet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from repmet.models.detection.canvas_transform import CanvasTransform
from repmet.models.detection.ignoring_rpn import IgnoringRegionProposalNetwork
from repmet.models.detection.repmet_box_predictor import RepMetBoxPredictor
from repmet.models.detection.repmet_roi_heads import RepMetRoIHeads


@dataclass(frozen=True)
class DetectorSize:
    """What sizes the detector: input, RoIs and heads (CPU configs shrink these)."""

    min_size: int = 320
    max_size: int = 512
    rpn_pre_nms_train: int = 1000
    rpn_post_nms_train: int = 500
    rpn_pre_nms_test: int = 500
    rpn_post_nms_test: int = 300
    rois_per_image: int = 128
    box_head_dim: int = 512
    embedding_hidden: int = 512
    embedding_dim: int = 128
    detections_per_image: int = 100
    sampling_ratio: int = 2  # explicit, never 0 (adaptive): the export needs a fixed one


def build_repmet_faster_rcnn(backbone: nn.Module, num_classes: int, reps_per_class: int, sigma: float,
                             size: DetectorSize = DetectorSize(), margin_alpha: float = 1.0,
                             margin_weight: float = 1.0, distance: str = "sqeuclidean") -> GeneralizedRCNN:
    """``backbone`` returns an ordered dict of FPN maps ``"0", "1", "2", "pool"`` with
    ``backbone.out_channels`` channels."""
    levels = ["0", "1", "2"]
    anchors = AnchorGenerator(sizes=((32,), (64,), (128,), (256,)), aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    rpn = IgnoringRegionProposalNetwork(
        anchors, RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
        pre_nms_top_n={"training": size.rpn_pre_nms_train, "testing": size.rpn_pre_nms_test},
        post_nms_top_n={"training": size.rpn_post_nms_train, "testing": size.rpn_post_nms_test}, nms_thresh=0.7)
    pool = MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=size.sampling_ratio)
    fix_pool_scales(pool, backbone)
    box_head = TwoMLPHead(backbone.out_channels * 7 * 7, size.box_head_dim)
    predictor = RepMetBoxPredictor(size.box_head_dim, size.embedding_hidden, size.embedding_dim, num_classes,
                                   reps_per_class, sigma, distance)
    roi_heads = RepMetRoIHeads(pool, box_head, predictor, fg_iou_thresh=0.5, bg_iou_thresh=0.5,
                               batch_size_per_image=size.rois_per_image, positive_fraction=0.25,
                               bbox_reg_weights=None, score_thresh=0.05, nms_thresh=0.5,
                               detections_per_img=size.detections_per_image, margin_alpha=margin_alpha,
                               margin_weight=margin_weight)
    transform = CanvasTransform(size.min_size, size.max_size, list(IMAGENET_MEAN), list(IMAGENET_STD))
    return GeneralizedRCNN(backbone, rpn, roi_heads, transform)


def fix_pool_scales(pool: MultiScaleRoIAlign, backbone: nn.Module, probe: int = 128) -> None:
    """Set the RoI pooler's level scales from the backbone's strides. torchvision infers them at
    the first forward from the feature size over the (unpadded) image size and keeps them, which
    gives a wrong scale when an image is much smaller than its padded batch (a 320 px image on
    the 512 px export canvas made stride 8 look like stride 4)."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        maps = backbone(torch.zeros(1, 3, probe, probe))
    backbone.train(was_training)
    pool.scales = [2.0 ** round(math.log2(maps[name].shape[-2] / probe)) for name in pool.featmap_names]
    pool.map_levels = initLevelMapper(int(-math.log2(pool.scales[0])), int(-math.log2(pool.scales[-1])))

