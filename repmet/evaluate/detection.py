"""Evaluation of a few-shot detector: base-class AP50 with the trained representatives, and
few-shot episodes on the novel classes: each episode draws K support boxes per novel class from
the train split (seeded), enrolls each class from the embeddings of its boxes (k-means to the
model's K representatives when there are more), and detects on the test images.

The regions of the test images (boxes, objectness, crop embeddings) do not depend on the gallery,
so they are computed once and each episode reruns only the scoring and NMS
(``RepMetFasterRCNN.detect``, the same code the exported graphs run)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from repmet.data.detection import BaseNovelClasses, DetectionSplit, sample_support
from repmet.errors import UserError
from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.registry import EVALUATIONS
from repmet.evaluate.linear_finetune_baseline import (detect_with_linear_classifier, fine_tune_linear_classifier,
                                                      support_region_features)
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import cache_regions, enrolled_representatives


def evaluate_detector(trained, test: DetectionSplit, split: str, classes: BaseNovelClasses,
                      support_split: Callable[[], DetectionSplit], shots: list[int], episodes: int, seed: int,
                      device: torch.device, progress: bool = True, baseline: bool = True) -> dict:
    """``trained``: a :class:`repmet.methods.trained.TrainedModel` of a detector; ``support_split()``
    loads the split that support boxes are drawn from (only when there are novel classes).
    ``baseline``: also fine-tune a linear classifier on each episode's K shots (TFA), on the same
    novel support boxes plus K of each base class, and report its AP beside RepMet's."""

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


@EVALUATIONS.register("detection")
def evaluate_detector_method(trained, request) -> dict[str, Any]:
    """metric-eval of the few-shot detector: base AP50 and novel AP50 per K over seeded episodes."""
    plan = trained.method.evaluation_plan(trained.config, request)
    return evaluate_detector(trained, plan.test, plan.split, plan.classes, plan.load_support_split, plan.shots,
                             plan.episodes, plan.seed, request.device, request.progress, plan.finetune_baseline)
