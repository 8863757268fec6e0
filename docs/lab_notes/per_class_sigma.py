"""Diagnostic: a temperature per enrolled class from its shots' spread. sigma_c = sigma *
sqrt(spread_c / median spread), clamped to [sigma / 2, 2 sigma], where spread_c is the mean squared
distance of the class's shot embeddings to their mean (K >= 2; K = 1 keeps sigma). Background keeps
sigma. Paired episodes on cached regions, no base classes.

    python docs/lab_notes/per_class_sigma.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT [EPISODES]
"""
import sys

import torch

from cached_setting import open_setting

from repmet.data.detection import sample_support
from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import embed_boxes
from repmet.models.detection.region_scoring import detections
from repmet.ops.distances import squared_euclidean
from repmet.ops.kmeans import padded_centres

setting = open_setting(*sys.argv[1:5])
episodes = int(sys.argv[5]) if len(sys.argv) > 5 else 5
model, gallery, names, ids = setting.model, setting.gallery, setting.names, setting.ids
k = gallery.reps_per_class
sigma = gallery.sigma
state = {}


def detect(boxes, objectness, embeddings, representatives):
    n, (c, kk, d) = embeddings.shape[0], representatives.shape
    to_classes = squared_euclidean(embeddings, representatives.reshape(c * kk, d)).reshape(n, c, kk).min(dim=2).values
    to_background = squared_euclidean(embeddings, gallery.background).min(dim=1).values
    logits = torch.cat([-to_background[:, None] / (2 * sigma ** 2), -to_classes / (2 * state["sigmas"][None, :] ** 2)], 1)
    scores = torch.softmax(logits, dim=1)[:, 1:] * objectness.clamp_min(0.0)[:, None]
    return detections(boxes, scores, objectness >= 0.0, model.size.score_threshold, model.size.nms_iou,
                      model.size.detections_per_image, model.size.candidates)


model.detect = detect
results = {}
for shot in (1, 3, 5):
    for episode in range(episodes):
        support = sample_support(setting.support_split, names, shot, 0, episode)
        shots = [embed_boxes(model, boxes, torch.device("cpu")) for boxes in support.values()]
        reps = torch.stack([padded_centres(e, k, k, seed=p) for p, e in enumerate(shots)])
        spread = torch.tensor([float(((e - e.mean(0)) ** 2).sum(1).mean()) for e in shots])
        for variant in ("global", "per_class"):
            if variant == "global" or shot == 1:
                state["sigmas"] = torch.full((len(names),), sigma)
            else:
                ratio = (spread / spread.median()).sqrt().clamp(0.5, 2.0)
                state["sigmas"] = sigma * ratio
            results.setdefault((variant, shot), []).append(
                detection_ap(setting.test, detect_cached(model, setting.cached, reps, list(ids)), ids)["ap50"])
for variant in ("global", "per_class"):
    print(f"{variant:>10}: " + " ".join(f"K={s}: {100 * mean_and_ci95(results[(variant, s)])[0]:.1f}"
                                        for s in (1, 3, 5)), flush=True)
