"""Diagnostic: what objectness should do in the score. Per-class NMS ranks (region, class) pairs by
one score and reports another: rank by P(c | crop) * objectness^a (which box of an object to keep),
report P(c | crop) * objectness^b (how the object ranks against other images' objects).
Paired episodes on cached regions.

    python docs/lab_notes/objectness_roles.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT [CLASSES|-] [--with-base]
"""
import sys
from pathlib import Path

import torch
from torchvision.ops import batched_nms

sys.path.insert(0, "benchmarks")
from detection_transfer import enrollable, load_split  # noqa: E402

from repmet.data import default_data_root  # noqa: E402
from repmet.data.detection import sample_support  # noqa: E402
from repmet.evaluate.confidence import mean_and_ci95  # noqa: E402
from repmet.evaluate.detection_ap import detection_ap  # noqa: E402
from repmet.evaluate.region_detections import detect_cached  # noqa: E402
from repmet.methods import open_checkpoint  # noqa: E402
from repmet.methods.detector_regions import cache_regions, enrolled_representatives  # noqa: E402
from repmet.models.detection.region_scoring import class_scores  # noqa: E402

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
base_reps = gallery.gallery()
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
        support = sample_support(support_split, names, shot, 0, episode)
        reps = enrolled_representatives(model, support, k, 0, torch.device("cpu"))
        label_map = list(ids)
        if with_base:
            reps, label_map = torch.cat([base_reps, reps]), [-1] * len(base_reps) + list(ids)
        for ab in VARIANTS:
            state["ab"] = ab
            results.setdefault((ab, shot), []).append(
                detection_ap(test, detect_cached(model, cached, reps, label_map), ids)["ap50"])
for ab in VARIANTS:
    print(f"rank obj^{ab[0]}, report obj^{ab[1]}: " + " ".join(
        f"K={s}: {100 * mean_and_ci95(results[(ab, s)])[0]:.1f}" for s in (1, 5)), flush=True)
