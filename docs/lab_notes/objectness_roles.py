"""Diagnostic: what objectness should do in the score. Per-class NMS ranks (region, class) pairs by
one score and reports another: rank by P(c | crop) * objectness^a (which box of an object to keep),
report P(c | crop) * objectness^b (how the object ranks against other images' objects).
Paired episodes on cached regions.

    python docs/lab_notes/objectness_roles.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT [CLASSES|-] [--with-base]
"""
import sys

import torch
from torchvision.ops import batched_nms

from cached_setting import episode_gallery, open_setting

from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.models.detection.region_scoring import class_scores

setting = open_setting(*sys.argv[1:5], sys.argv[5] if len(sys.argv) > 5 else None)
with_base = "--with-base" in sys.argv
model, gallery = setting.model, setting.gallery
VARIANTS = [(1, 1), (0, 0), (1, 0), (1, 0.5), (0.5, 0.5), (1, 0.25)]
state = {}


def detect(boxes, objectness, embeddings, representatives):
    a, b = state["ab"]
    valid = objectness >= 0
    posterior = class_scores(embeddings, torch.ones_like(objectness), representatives, gallery.background, gallery.sigma)
    obj = objectness.clamp_min(1e-6)[:, None]
    rank, report = posterior * obj ** a, posterior * obj ** b
    n, c = posterior.shape
    pairs = (rank > model.size.score_threshold * (1 if a == 0 else 0.1)) & valid[:, None]
    region, label = pairs.nonzero(as_tuple=True)
    keep = batched_nms(boxes[region], rank[region, label], label, model.size.nms_iou)
    keep = keep[report[region[keep], label[keep]].argsort(descending=True)][:model.size.detections_per_image]
    return (boxes[region[keep]], report[region[keep], label[keep]], label[keep] + 1, torch.tensor([len(keep)]))


model.detect = detect
results = {}
for shot in (1, 5):
    for episode in range(5):
        _, reps, label_map = episode_gallery(setting, shot, episode, with_base)
        for ab in VARIANTS:
            state["ab"] = ab
            results.setdefault((ab, shot), []).append(detection_ap(
                setting.test, detect_cached(model, setting.cached, reps, label_map), setting.ids)["ap50"])
for ab in VARIANTS:
    print(f"rank obj^{ab[0]}, report obj^{ab[1]}: " + " ".join(
        f"K={s}: {100 * mean_and_ci95(results[(ab, s)])[0]:.1f}" for s in (1, 5)), flush=True)
