"""Evaluation of a few-shot detector: base-class AP50 with the trained representatives, and
few-shot episodes on the novel classes: each episode draws K support boxes per novel class from
the train split (seeded), enrolls each class from the embeddings of its boxes (k-means to the
model's K representatives when there are more), and detects on the test images.

The region proposals and RoI box features of the test images do not depend on the
representatives, so they are computed once and each episode reruns only the distance head and
the post-processing (NMS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torchvision.transforms.functional as TF
from tqdm import tqdm

from repmet.data.detection import BaseNovelClasses, DetectionSplit, SupportBox, sample_support
from repmet.errors import UserError
from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import ImageDetections, detection_ap
from repmet.imaging import open_rgb
from repmet.ops.kmeans import kmeans


def image_tensor(path) -> torch.Tensor:
    return TF.to_tensor(open_rgb(path))


@dataclass
class CachedRoIs:
    proposals: torch.Tensor  # [R, 4] in the resized image
    box_features: torch.Tensor  # [R, F]
    image_size: tuple[int, int]  # resized (h, w)
    original_size: tuple[int, int]


@torch.no_grad()
def cache_rois(model, split: DetectionSplit, device: torch.device, progress: bool) -> list[CachedRoIs]:
    heads = model.roi_heads
    cached = []
    for image in tqdm(split.images, desc="proposals and RoI features", disable=not progress, leave=False):
        picture = image_tensor(image.path).to(device)
        images, _ = model.transform([picture])
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        box_features = heads.box_head(heads.box_roi_pool(features, proposals, images.image_sizes))
        cached.append(CachedRoIs(proposals[0], box_features, images.image_sizes[0], tuple(picture.shape[-2:])))
    return cached


@torch.no_grad()
def detect_cached(model, cached: list[CachedRoIs], label_map: list[int]) -> list[ImageDetections]:
    """Detections from cached RoIs with the predictor's current representatives; labels are
    mapped from the predictor's 1..C to dataset class indices ``label_map[c - 1]``."""
    return [postprocess(model, *model.roi_heads.box_predictor(rois.box_features), rois, label_map) for rois in cached]


def postprocess(model, logits: torch.Tensor, deltas: torch.Tensor, rois: CachedRoIs, label_map: list[int]) -> ImageDetections:
    """torchvision's post-processing (per-class NMS, score threshold, top detections) of one
    image's RoI scores, boxes mapped back to its own pixels and labels to dataset classes."""
    heads = model.roi_heads
    boxes, scores, labels = heads.postprocess_detections(logits, deltas, [rois.proposals], [rois.image_size])
    (result,) = model.transform.postprocess([{"boxes": boxes[0], "scores": scores[0], "labels": labels[0]}],
                                            [rois.image_size], [rois.original_size])
    return ImageDetections(result["boxes"].cpu().numpy(), result["scores"].cpu().numpy(),
                           torch.tensor(label_map)[result["labels"].cpu() - 1].numpy())


@torch.no_grad()
def embed_boxes(model, support: list[SupportBox], device: torch.device) -> torch.Tensor:
    """``[N, D]`` embeddings of boxes, pooled from their images as the RoI head pools proposals."""
    heads, rows = model.roi_heads, []
    for item in support:
        picture = image_tensor(item.image.path).to(device)
        target = {"boxes": torch.as_tensor(item.box, dtype=torch.float32, device=device)[None],
                  "labels": torch.ones(1, dtype=torch.int64, device=device)}
        images, (scaled,) = model.transform([picture], [target])
        features = model.backbone(images.tensors)
        box_features = heads.box_head(heads.box_roi_pool(features, [scaled["boxes"]], images.image_sizes))
        rows.append(heads.box_predictor.embedding(box_features.flatten(1)))
    return torch.cat(rows)


def enrolled_representatives(model, support: dict[str, list[SupportBox]], k: int, seed: int,
                             device: torch.device) -> torch.Tensor:
    """``[N, K, D]``: each class's support embeddings, k-means'd to K (fewer repeat the last one,
    which the minimum over representatives ignores)."""
    reps = []
    for position, boxes in enumerate(support.values()):
        embeddings = embed_boxes(model, boxes, device)
        centers = kmeans(embeddings, min(k, len(embeddings)), seed=seed + position)[0] if len(embeddings) > 1 \
            else embeddings
        if len(centers) < k:
            centers = torch.cat([centers, centers[-1:].repeat(k - len(centers), 1)])
        reps.append(centers)
    return torch.stack(reps)


def evaluate_detector(trained, test: DetectionSplit, split: str, classes: BaseNovelClasses,
                      support_split: Callable[[], DetectionSplit], shots: list[int], episodes: int, seed: int,
                      device: torch.device, progress: bool = True, baseline: bool = True) -> dict:
    """``trained``: a :class:`repmet.methods.trained.TrainedModel` of a detector; ``support_split()``
    loads the split that support boxes are drawn from (only when there are novel classes).
    ``baseline``: also fine-tune a linear classifier on each episode's K shots (TFA), on the same
    novel support boxes plus K of each base class, and report its AP beside RepMet's."""
    from repmet.evaluate.linear_finetune_baseline import (detect_with_linear_classifier,
                                                          fine_tune_linear_classifier, support_roi_features)

    model = trained.model.to(device).eval()
    predictor = model.roi_heads.box_predictor
    base_ids = test.class_index(list(trained.class_names), "the checkpoint's classes")
    cached = cache_rois(model, test, device, progress)
    base = detection_ap(test, detect_cached(model, cached, base_ids), base_ids)
    result = {"split": split, "images": len(test), "base_ap50": base["ap50"], "base_ap50_95": base["ap50_95"],
              "base_per_class_ap50": base["per_class_ap50"], "fewshot": []}
    if not classes.novel:
        return result
    novel_ids = test.class_index(list(classes.novel), "detection novel classes")
    train = support_split()
    trained_reps = predictor.representatives.detach().clone().reshape(len(base_ids), predictor.reps_per_class, -1)
    try:
        for shot in shots:
            novel_scores, base_scores, per_class = [], [], {name: [] for name in classes.novel}
            tfa_novel, tfa_base = [], []
            for episode in tqdm(range(episodes), desc=f"{shot}-shot episodes", disable=not progress, leave=False):
                support = sample_support(train, list(classes.novel), shot, seed, episode)
                novel_reps = enrolled_representatives(model, support, predictor.reps_per_class, seed, device)
                predictor.set_representatives(torch.cat([trained_reps, novel_reps.to(trained_reps)]))
                found = detect_cached(model, cached, base_ids + novel_ids)
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
                    features, labels = support_roi_features(model, shots_all, device)
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
    finally:
        predictor.set_representatives(trained_reps)
    result["novel_ap50"] = result["fewshot"][0]["novel_ap50"]
    result["novel_ap50_ci95"] = result["fewshot"][0]["novel_ap50_ci95"]
    return result
