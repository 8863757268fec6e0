"""Evaluation of a few-shot detector: base-class AP50 with the trained representatives, and
few-shot episodes on the novel classes: each episode draws K support boxes per novel class from
the train split (seeded), enrolls each class from the embeddings of its boxes (k-means to the
model's K representatives when there are more), and detects on the test images.

The regions of the test images (boxes, objectness, crop embeddings) do not depend on the gallery,
so they are computed once and each episode reruns only the scoring and NMS
(``RepMetFasterRCNN.detect``, the same code the exported graphs run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torchvision.models.detection.transform import resize_boxes
from tqdm import tqdm

from repmet.data.detection import BaseNovelClasses, DetectionSplit, SupportBox, sample_support
from repmet.errors import UserError
from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import ImageDetections, detection_ap
from repmet.imaging import open_rgb
from repmet.ops.kmeans import padded_centres


def image_tensor(path) -> torch.Tensor:
    return TF.to_tensor(open_rgb(path))


@dataclass
class CachedRegions:
    boxes: torch.Tensor  # [N, 4] in the resized image
    objectness: torch.Tensor  # [N], INVALID on padding rows
    embeddings: torch.Tensor  # [N, D]
    image_size: tuple[int, int]  # resized (h, w)
    original_size: tuple[int, int]


@torch.no_grad()
def image_regions(model, picture: torch.Tensor) -> CachedRegions:
    """One image's regions, as ``RepMetFasterRCNN.forward`` computes them."""
    batch, _ = model.transform([picture])
    return canvas_regions(model, batch, tuple(picture.shape[-2:]))


@torch.no_grad()
def canvas_regions(model, batch, original_size: tuple[int, int]) -> CachedRegions:
    """The regions of the one image in ``batch`` (``model.transform``'s output)."""
    features = model.backbone(batch.tensors)
    proposals, _ = model.rpn(batch, features)
    rois = proposals[0]
    size = torch.tensor(batch.image_sizes[0], dtype=torch.float32, device=rois.device)
    valid = torch.ones(len(rois), dtype=torch.bool, device=rois.device)
    boxes, objectness, embeddings = model.regions(features, rois, valid, batch.tensors, size)
    return CachedRegions(boxes, objectness, embeddings, tuple(batch.image_sizes[0]), original_size)


def to_canvas(boxes, original_size: tuple[int, int], canvas_size: tuple[int, int], device) -> torch.Tensor:
    """Boxes ``[N, 4]`` in an image's own pixels -> the resized image that the model sees
    (``model.transform``'s scaling, which the detector's outputs undo)."""
    return resize_boxes(torch.as_tensor(np.asarray(boxes), dtype=torch.float32, device=device).reshape(-1, 4),
                        list(original_size), list(canvas_size))


@torch.no_grad()
def cache_regions(model, split: DetectionSplit, device: torch.device, progress: bool) -> list[CachedRegions]:
    return [image_regions(model, image_tensor(image.path).to(device))
            for image in tqdm(split.images, desc="regions and their embeddings", disable=not progress, leave=False)]


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


@torch.no_grad()
def embed_boxes(model, support: list[SupportBox], device: torch.device) -> torch.Tensor:
    """``[N, D]`` region embeddings of boxes, cropped from their images as the detector crops its
    regions (each image decoded and resized once, however many of the boxes it holds)."""
    by_image: dict = {}
    for row, item in enumerate(support):
        by_image.setdefault(item.image.path, []).append(row)
    rows: list = [None] * len(support)
    for path, members in by_image.items():
        picture = image_tensor(path).to(device)
        batch, _ = model.transform([picture])
        boxes = to_canvas([support[m].box for m in members], tuple(picture.shape[-2:]), batch.image_sizes[0], device)
        for m, embedding in zip(members, model.region_embedder(batch.tensors, boxes)):
            rows[m] = embedding
    return torch.stack(rows)


def enrolled_representatives(model, support: dict[str, list[SupportBox]], k: int, seed: int,
                             device: torch.device, centres: int | None = None) -> torch.Tensor:
    """``[N, K, D]``: each class's support embeddings, k-means'd to ``centres`` (default K) and
    padded to K (:func:`repmet.ops.kmeans.padded_centres`)."""
    return torch.stack([padded_centres(embed_boxes(model, boxes, device), centres or k, k, seed=seed + position)
                        for position, boxes in enumerate(support.values())])


def evaluate_detector(trained, test: DetectionSplit, split: str, classes: BaseNovelClasses,
                      support_split: Callable[[], DetectionSplit], shots: list[int], episodes: int, seed: int,
                      device: torch.device, progress: bool = True, baseline: bool = True) -> dict:
    """``trained``: a :class:`repmet.methods.trained.TrainedModel` of a detector; ``support_split()``
    loads the split that support boxes are drawn from (only when there are novel classes).
    ``baseline``: also fine-tune a linear classifier on each episode's K shots (TFA), on the same
    novel support boxes plus K of each base class, and report its AP beside RepMet's."""
    from repmet.evaluate.linear_finetune_baseline import (detect_with_linear_classifier,
                                                          fine_tune_linear_classifier, support_region_features)

    model = trained.model.to(device).eval()
    gallery = model.region_gallery
    base_ids = test.class_index(list(trained.class_names), "the checkpoint's classes")
    cached = cache_regions(model, test, device, progress)
    trained_reps = gallery.gallery().detach().clone()
    base = detection_ap(test, detect_cached(model, cached, trained_reps, base_ids), base_ids)
    result = {"split": split, "images": len(test), "base_ap50": base["ap50"], "base_ap50_95": base["ap50_95"],
              "base_per_class_ap50": base["per_class_ap50"], "fewshot": []}
    if not classes.novel:
        return result
    novel_ids = test.class_index(list(classes.novel), "detection novel classes")
    train = support_split()
    support_regions: dict = {}  # the baseline's support images recur across episodes and K
    for shot in shots:
        novel_scores, base_scores, per_class = [], [], {name: [] for name in classes.novel}
        tfa_novel, tfa_base = [], []
        for episode in tqdm(range(episodes), desc=f"{shot}-shot episodes", disable=not progress, leave=False):
            support = sample_support(train, list(classes.novel), shot, seed, episode)
            novel_reps = enrolled_representatives(model, support, gallery.reps_per_class, seed, device)
            found = detect_cached(model, cached, torch.cat([trained_reps, novel_reps.to(trained_reps)]),
                                  base_ids + novel_ids)
            novel = detection_ap(test, found, novel_ids)
            if novel["ap50"] is None:
                raise UserError(f"{test.description} has no box of the novel classes; evaluate on a split that has")
            novel_scores.append(novel["ap50"])
            base_scores.append(detection_ap(test, found, base_ids)["ap50"])
            for name, value in novel["per_class_ap50"].items():
                if value is not None:
                    per_class[name].append(value)
            if baseline:
                shots_all = {**sample_support(train, list(trained.class_names), shot, seed + 1, episode), **support}
                features, labels = support_region_features(model, shots_all, device, support_regions)
                classifier = fine_tune_linear_classifier(features, labels, len(shots_all), seed=seed + episode)
                tuned = detect_with_linear_classifier(model, classifier, cached, base_ids + novel_ids)
                tfa_novel.append(detection_ap(test, tuned, novel_ids)["ap50"])
                tfa_base.append(detection_ap(test, tuned, base_ids)["ap50"])
        novel_mean, novel_ci = mean_and_ci95(novel_scores)
        base_mean, base_ci = mean_and_ci95(base_scores)
        result["fewshot"].append({"shot": shot, "episodes": episodes, "novel_ap50": novel_mean,
                                  "novel_ap50_ci95": novel_ci, "base_ap50": base_mean, "base_ap50_ci95": base_ci,
                                  "novel_per_class_ap50": {n: float(np.mean(v)) for n, v in per_class.items() if v},
                                  "per_episode_novel_ap50": novel_scores})
        if baseline:
            (tfa_novel_mean, tfa_novel_ci), (tfa_base_mean, tfa_base_ci) = mean_and_ci95(tfa_novel), mean_and_ci95(tfa_base)
            result["fewshot"][-1]["finetuned_linear_baseline"] = {
                "novel_ap50": tfa_novel_mean, "novel_ap50_ci95": tfa_novel_ci, "base_ap50": tfa_base_mean,
                "base_ap50_ci95": tfa_base_ci, "per_episode_novel_ap50": tfa_novel}
    result["novel_ap50"] = result["fewshot"][0]["novel_ap50"]
    result["novel_ap50_ci95"] = result["fewshot"][0]["novel_ap50_ci95"]
    return result
