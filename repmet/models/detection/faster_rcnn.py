"""The few-shot detector: torchvision's Faster R-CNN composition (backbone + FPN, RPN, multi-scale
RoIAlign, two-layer box head) trained class-agnostically, so that it proposes and places *objects*;
which class an object is, RepMet's distance head decides on an embedding of the region that keeps
what the ImageNet backbone knows (each region cropped and embedded by a frozen classifier
backbone, :mod:`repmet.models.detection.region_embedder`).

Inference, for each image: RPN proposals -> box head: P(object) and a class-agnostic refined box
-> class-agnostic NMS, the ``regions_per_image`` most object-like regions -> crop embeddings ->
``P(object) * P(c | crop)`` against the gallery and background representatives -> per-class NMS
(:mod:`repmet.models.detection.region_scoring`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import initLevelMapper

from repmet.models.detection.canvas_transform import CanvasTransform
from repmet.models.detection.ignoring_rpn import IgnoringRegionProposalNetwork
from repmet.models.detection.objectness_box_predictor import ObjectnessBoxPredictor
from repmet.models.detection.region_embedder import RegionEmbedder
from repmet.models.detection.region_scoring import class_scores, clip_to_image, detections, select_regions
from repmet.ops.roi_align import roi_align


@dataclass(frozen=True)
class DetectorSize:
    """What sizes the detector: input, RoIs, heads and regions (CPU configs shrink these)."""

    min_size: int = 320
    max_size: int = 512
    rpn_pre_nms_train: int = 1000
    rpn_post_nms_train: int = 500
    rpn_pre_nms_test: int = 500
    rpn_post_nms_test: int = 300
    rois_per_image: int = 128
    box_head_dim: int = 512
    detections_per_image: int = 100
    sampling_ratio: int = 2  # explicit, never 0 (adaptive): the export needs a fixed one
    regions_per_image: int = 50  # regions embedded and classified per image
    region_nms: float = 0.7  # class-agnostic NMS among regions before they are embedded
    crop_size: int = 128
    background_reps: int = 32
    score_threshold: float = 0.01
    objectness_power: float = 1.0  # score = posterior x objectness^p (region_scoring.class_scores)
    nms_iou: float = 0.5
    candidates: int = 2000  # (region, class) pairs that reach the final NMS


# Anchors up to the whole canvas: objects unlike any base class are often large (a frame-filling
# animal), and an RPN that cannot propose them at all has nothing to learn them from.
ANCHOR_SIZES = ((32, 45), (64, 90), (128, 181), (256, 512))
ANCHOR_RATIOS = ((0.5, 1.0, 2.0),) * 4


class ClassAgnosticRoIHeads(RoIHeads):
    """torchvision's RoI heads trained on one class, "object": every base box (label > 0) is an
    object; ignore boxes (label -1) are matched like objects, so proposals on them get label -1,
    which torchvision's sampler never draws (neither object nor background)."""

    def forward(self, features, proposals, image_shapes, targets=None):
        if targets is not None:
            targets = [{**t, "labels": torch.where(t["labels"] > 0, torch.ones_like(t["labels"]), t["labels"])}
                       for t in targets]
        return super().forward(features, proposals, image_shapes, targets)


class RegionGallery(nn.Module):
    """The classes the detector knows after base training: ``representatives [C * K, D]`` of the
    base classes and ``background [B, D]``, both fitted from crop embeddings of the training set
    (:func:`repmet.methods.detector_gallery_fit.fit_region_gallery`), and RepMet's ``sigma``."""

    def __init__(self, num_classes: int, reps_per_class: int, embedding_dim: int, background_reps: int,
                 sigma: float) -> None:
        super().__init__()
        self.register_buffer("representatives", torch.zeros(num_classes * reps_per_class, embedding_dim))
        self.register_buffer("background", torch.zeros(background_reps, embedding_dim))
        self.reps_per_class, self.sigma = reps_per_class, float(sigma)

    @property
    def num_classes(self) -> int:
        return self.representatives.shape[0] // self.reps_per_class

    def gallery(self) -> torch.Tensor:
        """``[C, K, D]``."""
        return self.representatives.reshape(self.num_classes, self.reps_per_class, -1)

    @torch.no_grad()
    def set_representatives(self, representatives: torch.Tensor) -> None:
        """Replace the gallery with ``representatives [C, K, D]`` (K and D must match)."""
        c, k, d = representatives.shape
        if k != self.reps_per_class or d != self.representatives.shape[1]:
            raise ValueError(f"representatives {tuple(representatives.shape)} do not fit K = {self.reps_per_class}, "
                             f"D = {self.representatives.shape[1]}")
        self.representatives = representatives.reshape(c * k, d).to(self.representatives).clone()

    @torch.no_grad()
    def set_background(self, background: torch.Tensor) -> None:
        if background.shape != self.background.shape:
            raise ValueError(f"background {tuple(background.shape)} does not fit {tuple(self.background.shape)}")
        self.background.copy_(background)


def pool_box_features(pool: MultiScaleRoIAlign, maps: dict[str, torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
    """torchvision's ``MultiScaleRoIAlign`` of one image's ``rois [R, 4]`` without data-dependent
    indexing: every RoI is pooled at every level and keeps its own level's result."""
    level = pool.map_levels([rois])
    pooled = torch.zeros(())
    for index, (name, scale) in enumerate(zip(pool.featmap_names, pool.scales)):
        at_level = roi_align(maps[name], rois, int(pool.output_size[0]), scale, int(pool.sampling_ratio),
                             aligned=False)
        pooled = pooled + at_level * (level == index).to(at_level)[:, None, None, None]
    return pooled


class RepMetFasterRCNN(GeneralizedRCNN):
    """Training is torchvision's (RPN and class-agnostic box losses). In eval mode ``forward``
    returns torchvision's detections (boxes in the images' own pixels, labels 1..C of the gallery)
    from :meth:`regions` and :meth:`detect`, the two steps every exported graph also runs."""

    def __init__(self, backbone: nn.Module, rpn: nn.Module, roi_heads: RoIHeads, transform: CanvasTransform,
                 region_embedder: RegionEmbedder, region_gallery: RegionGallery, size: DetectorSize) -> None:
        super().__init__(backbone, rpn, roi_heads, transform)
        self.region_embedder, self.region_gallery, self.size = region_embedder, region_gallery, size

    def regions(self, features: dict[str, torch.Tensor], rois: torch.Tensor, valid: torch.Tensor,
                image: torch.Tensor, image_size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One image's ``rois [R, 4]`` (``valid [R]``) -> the regions to classify: ``boxes [N, 4]``
        (refined, in the resized image), ``objectness [N]`` (``INVALID`` on padding) and unit
        ``embeddings [N, D]``. ``image [1, 3, H, W]`` is the normalised (padded) image."""
        heads = self.roi_heads
        box_features = heads.box_head(pool_box_features(heads.box_roi_pool, features, rois))
        objectness = heads.box_predictor.objectness(box_features)
        boxes = clip_to_image(heads.box_coder.decode_single(heads.box_predictor.deltas(box_features), rois),
                              image_size)
        boxes, objectness = select_regions(boxes, objectness, valid, self.size.regions_per_image,
                                           self.size.region_nms)
        return boxes, objectness, self.region_embedder(image, boxes)

    def detect(self, boxes: torch.Tensor, objectness: torch.Tensor, embeddings: torch.Tensor,
               representatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Regions and a gallery ``representatives [C, K, D]`` -> ``boxes [M, 4]``, ``scores [M]``,
        ``labels [M]`` (1..C, 0 on padding), ``count [1]``."""
        gallery = self.region_gallery
        scores = class_scores(embeddings, objectness, representatives, gallery.background, gallery.sigma,
                              self.size.objectness_power)
        return detections(boxes, scores, objectness >= 0.0, self.size.score_threshold, self.size.nms_iou,
                          self.size.detections_per_image, self.size.candidates)

    def forward(self, images, targets=None):
        if self.training:
            return super().forward(images, targets)
        original_sizes = [tuple(image.shape[-2:]) for image in images]
        batch, _ = self.transform(images)
        features = self.backbone(batch.tensors)
        proposals, _ = self.rpn(batch, features)
        results = []
        for index, (rois, size) in enumerate(zip(proposals, batch.image_sizes)):
            found = self.detect(*self.regions({k: v[index:index + 1] for k, v in features.items()}, rois,
                                              torch.ones(len(rois), dtype=torch.bool, device=rois.device),
                                              batch.tensors[index:index + 1],
                                              torch.tensor(size, dtype=torch.float32, device=rois.device)),
                                self.region_gallery.gallery())
            n = int(found[3])
            results.append({"boxes": found[0][:n], "scores": found[1][:n], "labels": found[2][:n]})
        return self.transform.postprocess(results, batch.image_sizes, original_sizes)


def build_repmet_faster_rcnn(backbone: nn.Module, region_backbone: nn.Module, num_classes: int,
                             reps_per_class: int, sigma: float, mean: tuple[float, ...], std: tuple[float, ...],
                             region_mean: tuple[float, ...], region_std: tuple[float, ...],
                             size: DetectorSize = DetectorSize()) -> RepMetFasterRCNN:
    """``backbone`` returns an ordered dict of FPN maps ``"0", "1", "2", "pool"`` with
    ``backbone.out_channels`` channels; ``region_backbone`` maps images (normalised by
    ``region_mean`` / ``region_std``) to pooled features ``[B, D]`` with ``feature_dim`` D; the
    detector's own input is normalised by ``mean`` / ``std``."""
    levels = ["0", "1", "2"]
    anchors = AnchorGenerator(sizes=ANCHOR_SIZES, aspect_ratios=ANCHOR_RATIOS)
    rpn = IgnoringRegionProposalNetwork(
        anchors, RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
        pre_nms_top_n={"training": size.rpn_pre_nms_train, "testing": size.rpn_pre_nms_test},
        post_nms_top_n={"training": size.rpn_post_nms_train, "testing": size.rpn_post_nms_test}, nms_thresh=0.7)
    pool = MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=size.sampling_ratio)
    fix_pool_scales(pool, backbone)
    box_head = TwoMLPHead(backbone.out_channels * 7 * 7, size.box_head_dim)
    roi_heads = ClassAgnosticRoIHeads(pool, box_head, ObjectnessBoxPredictor(size.box_head_dim), fg_iou_thresh=0.5,
                                      bg_iou_thresh=0.5, batch_size_per_image=size.rois_per_image,
                                      positive_fraction=0.25, bbox_reg_weights=None, score_thresh=0.05,
                                      nms_thresh=size.nms_iou, detections_per_img=size.detections_per_image)
    transform = CanvasTransform(size.min_size, size.max_size, list(mean), list(std))
    embedder = RegionEmbedder(region_backbone, size.crop_size, size.sampling_ratio, mean, std, region_mean, region_std)
    gallery = RegionGallery(num_classes, reps_per_class, region_backbone.feature_dim, size.background_reps, sigma)
    return RepMetFasterRCNN(backbone, rpn, roi_heads, transform, embedder, gallery, size)


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
