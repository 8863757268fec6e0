"""Diagnostic: objectness calibrated per enrolled class by its own shots. The box head gives each
support box (a true object of the class) an objectness o; a class whose true boxes the base-trained
head rates low (an unfamiliar kind of object) has its regions' objectness divided by the shots'
(median, power ``p``, capped at 1): score = P(c | crop) * min(1, objectness / o_c). Paired episodes
on cached regions.

    python docs/lab_notes/support_objectness.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT [CLASSES|-] [--with-base]
"""
import sys

import numpy as np
import torch

from cached_setting import episode_gallery, open_setting

from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import image_tensor, to_canvas
from repmet.models.detection.faster_rcnn import pool_box_features
from repmet.models.detection.region_scoring import class_scores, detections

setting = open_setting(*sys.argv[1:5], sys.argv[5] if len(sys.argv) > 5 else None)
with_base = "--with-base" in sys.argv
model, gallery = setting.model, setting.gallery
base_classes = gallery.num_classes if with_base else 0


@torch.no_grad()
def box_objectness(boxes_of_class):
    values = []
    for item in boxes_of_class:
        picture = image_tensor(item.image.path)
        batch, _ = model.transform([picture])
        features = model.backbone(batch.tensors)
        rois = to_canvas([item.box], tuple(picture.shape[-2:]), batch.image_sizes[0], "cpu")
        heads = model.roi_heads
        values.append(float(heads.box_predictor.objectness(heads.box_head(pool_box_features(heads.box_roi_pool, features, rois)))[0]))
    return values


state = {}


def detect(boxes, objectness, embeddings, representatives):
    posterior = class_scores(embeddings, torch.ones_like(objectness), representatives, gallery.background, gallery.sigma)
    scale = state["scale"]
    weight = (objectness.clamp_min(0.0)[:, None] / scale[None, :]).clamp(max=1.0)
    scores = posterior * weight
    return detections(boxes, scores, objectness >= 0.0, model.size.score_threshold, model.size.nms_iou,
                      model.size.detections_per_image, model.size.candidates)


model.detect = detect
results, seen = {}, []
for shot in (1, 5):
    for episode in range(5):
        support, reps, label_map = episode_gallery(setting, shot, episode, with_base)
        shots_objectness = [box_objectness(boxes) for boxes in support.values()]
        seen += [v for values in shots_objectness for v in values]
        for variant in ("none", "median", "median_sqrt"):
            per_class = torch.tensor([float(np.median(v)) for v in shots_objectness])
            if variant == "none":
                per_class = torch.ones_like(per_class)
            elif variant == "median_sqrt":
                per_class = per_class.sqrt()
            state["scale"] = torch.cat([torch.ones(base_classes), per_class])
            results.setdefault((variant, shot), []).append(detection_ap(
                setting.test, detect_cached(model, setting.cached, reps, label_map), setting.ids)["ap50"])
print(f"support boxes' objectness: median {np.median(seen):.2f}, quartiles {np.percentile(seen, 25):.2f}-"
      f"{np.percentile(seen, 75):.2f}")
for variant in ("none", "median", "median_sqrt"):
    print(f"{variant:>12}: " + " ".join(f"K={s}: {100 * mean_and_ci95(results[(variant, s)])[0]:.1f}" for s in (1, 5)),
          flush=True)
