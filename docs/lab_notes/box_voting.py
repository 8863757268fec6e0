"""Diagnostic: box voting (Gidaris and Komodakis 2015): each detection kept by NMS gets the
score-weighted mean of the regions that overlap it (IoU >= t) and score its class, instead of the
one box NMS kept. Paired episodes on cached regions, no base classes.

    python docs/lab_notes/box_voting.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT [CLASSES|-] [--with-base]
"""
import sys

import torch
from torchvision.ops import box_iou

from cached_setting import episode_gallery, open_setting

from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.models.detection.region_scoring import class_scores, detections

setting = open_setting(*sys.argv[1:5], sys.argv[5] if len(sys.argv) > 5 else None)
with_base = "--with-base" in sys.argv
model, gallery = setting.model, setting.gallery


def voting_detect(iou_vote):
    def detect(boxes, objectness, embeddings, representatives):
        scores = class_scores(embeddings, objectness, representatives, gallery.background, gallery.sigma,
                              model.size.objectness_power)
        found = detections(boxes, scores, objectness >= 0.0, model.size.score_threshold, model.size.nms_iou,
                           model.size.detections_per_image, model.size.candidates)
        if iou_vote is None:
            return found
        kept, kept_scores, labels, count = found
        overlap = box_iou(kept, boxes)  # [M, N]
        weight = scores.T[(labels - 1).clamp_min(0)] * (overlap >= iou_vote) * (objectness >= 0)[None, :]
        weight = torch.where(torch.arange(len(kept))[:, None] < count, weight, torch.zeros_like(weight))
        voted = (weight @ boxes) / weight.sum(1, keepdim=True).clamp_min(1e-12)
        voted = torch.where(weight.sum(1, keepdim=True) > 0, voted, kept)
        return voted, kept_scores, labels, count
    return detect


results = {}
for variant in (None, 0.7, 0.6, 0.5):
    model.detect = voting_detect(variant)
    for shot in (1, 5):
        for episode in range(5):
            _, reps, label_map = episode_gallery(setting, shot, episode, with_base)
            results.setdefault((variant, shot), []).append(detection_ap(
                setting.test, detect_cached(model, setting.cached, reps, label_map), setting.ids)["ap50"])
    print(f"vote IoU {variant}: " + " ".join(f"K={s}: {100 * mean_and_ci95(results[(variant, s)])[0]:.1f}"
                                            for s in (1, 5)), flush=True)
