"""Diagnostic: box voting (Gidaris and Komodakis 2015): each detection kept by NMS gets the
score-weighted mean of the regions that overlap it (IoU >= t) and score its class, instead of the
one box NMS kept. Paired episodes on cached regions, no base classes.

    python docs/lab_notes/box_voting.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT [CLASSES|-] [--with-base]
"""
import sys
from pathlib import Path

import torch
from torchvision.ops import box_iou

sys.path.insert(0, "benchmarks")
from detection_transfer import enrollable, load_split  # noqa: E402

from repmet.data import default_data_root  # noqa: E402
from repmet.data.detection import sample_support  # noqa: E402
from repmet.evaluate.confidence import mean_and_ci95  # noqa: E402
from repmet.evaluate.detection_ap import detection_ap  # noqa: E402
from repmet.evaluate.region_detections import detect_cached  # noqa: E402
from repmet.methods import open_checkpoint  # noqa: E402
from repmet.methods.detector_regions import cache_regions, enrolled_representatives  # noqa: E402
from repmet.models.detection.region_scoring import class_scores, detections  # noqa: E402

torch.set_flush_denormal(True)
trained = open_checkpoint(sys.argv[1])
model = trained.model.eval()
folder = Path(default_data_root()) / sys.argv[2]
support_split, test = load_split(folder, sys.argv[3], "voc"), load_split(folder, sys.argv[4], "voc")
names = sys.argv[5].split(",") if len(sys.argv) > 5 and sys.argv[5] != "-" else enrollable(support_split, test, 5, 5)
with_base = "--with-base" in sys.argv
ids = test.class_index(names, "enrolled")
cached = cache_regions(model, test, torch.device("cpu"), False)
k = model.region_gallery.reps_per_class
gallery = model.region_gallery


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


base_reps = gallery.gallery()
results = {}
for variant in (None, 0.7, 0.6, 0.5):
    model.detect = voting_detect(variant)
    for shot in (1, 5):
        for episode in range(5):
            support = sample_support(support_split, names, shot, 0, episode)
            reps = enrolled_representatives(model, support, k, 0, torch.device("cpu"))
            label_map = list(ids)
            if with_base:
                reps, label_map = torch.cat([base_reps, reps]), [-1] * len(base_reps) + list(ids)
            results.setdefault((variant, shot), []).append(
                detection_ap(test, detect_cached(model, cached, reps, label_map), ids)["ap50"])
    print(f"vote IoU {variant}: " + " ".join(f"K={s}: {100 * mean_and_ci95(results[(variant, s)])[0]:.1f}"
                                            for s in (1, 5)), flush=True)
