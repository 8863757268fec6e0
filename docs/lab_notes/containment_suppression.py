"""Diagnostic: after per-class NMS, drop (or damp) a detection that lies mostly inside a better one
of the same class (a part of an object: intersection / own area >= t), or that mostly contains a
better one (a loose box or a group), which IoU-based NMS keeps when the two differ in size.
Paired episodes on cached regions.

    python docs/lab_notes/containment_suppression.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT [CLASSES|-] [--with-base]
"""
import sys

import torch
from torchvision.ops import box_area

from cached_setting import episode_gallery, open_setting

from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.models.detection.region_scoring import class_scores, detections

setting = open_setting(*sys.argv[1:5], sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "--with-base" else None)
with_base = "--with-base" in sys.argv
model, gallery = setting.model, setting.gallery


def intersection(a, b):
    low = torch.maximum(a[:, None, :2], b[None, :, :2])
    high = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    return (high - low).clamp_min(0).prod(-1)


def suppressing_detect(parts, groups, threshold, damp):
    def detect(boxes, objectness, embeddings, representatives):
        scores = class_scores(embeddings, objectness, representatives, gallery.background, gallery.sigma,
                              model.size.objectness_power)
        kept, kept_scores, labels, count = detections(
            boxes, scores, objectness >= 0.0, model.size.score_threshold, model.size.nms_iou,
            model.size.detections_per_image, model.size.candidates)
        if not (parts or groups):
            return kept, kept_scores, labels, count
        inter = intersection(kept, kept)  # [M, M]: row i against column j
        area = box_area(kept).clamp_min(1e-6)
        better = (kept_scores[None, :] > kept_scores[:, None]) & (labels[:, None] == labels[None, :])
        better &= (torch.arange(len(kept))[None, :] < count)
        hit = torch.zeros(len(kept), dtype=torch.bool)
        if parts:  # i mostly inside a better j
            hit |= ((inter / area[:, None] >= threshold) & better).any(1)
        if groups:  # i mostly contains a better j
            hit |= ((inter / area[None, :] >= threshold) & better).any(1)
        new_scores = torch.where(hit, kept_scores * damp, kept_scores)
        order = new_scores.argsort(descending=True)
        return kept[order], new_scores[order], labels[order], count
    return detect


variants = [("plain", False, False, 0, 1)]
for t in (0.8, 0.9):
    for damp in (0.0, 0.5):
        variants += [(f"parts t{t} x{damp}", True, False, t, damp), (f"groups t{t} x{damp}", False, True, t, damp),
                     (f"both t{t} x{damp}", True, True, t, damp)]
results = {}
episodes = 5
galleries = {(s, e): episode_gallery(setting, s, e, with_base)[1:] for s in (1, 5) for e in range(episodes)}
for name, parts, groups, t, damp in variants:
    model.detect = suppressing_detect(parts, groups, t, damp)
    for shot in (1, 5):
        for episode in range(episodes):
            reps, label_map = galleries[(shot, episode)]
            results.setdefault((name, shot), []).append(detection_ap(
                setting.test, detect_cached(model, setting.cached, reps, label_map), setting.ids)["ap50"])
    print(f"{name}: " + " ".join(f"K={s}: {100 * mean_and_ci95(results[(name, s)])[0]:.1f}" for s in (1, 5)),
          flush=True)
