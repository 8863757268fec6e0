"""Diagnostic (issue 20, the posterior on a domain base training never saw): does a background model of the new
domain, taken from the support images themselves, help? The regions of each support image that overlap none of its
boxes (IoU < 0.3 with every annotated box, and less than 30% of the region inside one) are what the user showed is *not* an enrolled class; their embeddings,
k-means'd into a few pseudo-classes enrolled beside the real ones, take probability mass from the enrolled classes on
background that looks like this domain's (their detections are dropped). No retraining, no export change: the
runtime could enroll them under a reserved label.

    python docs/lab_notes/support_negatives.py CHECKPOINT indoor85-voc trainval test [EPISODES] [PSEUDO_CLASSES]
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from detection_transfer import enrollable, load_split  # noqa: E402

from repmet.annotations.boxes import DetectionSplit  # noqa: E402
from repmet.data import default_data_root  # noqa: E402
from repmet.data.detection import sample_support  # noqa: E402
from repmet.evaluate.confidence import mean_and_ci95  # noqa: E402
from repmet.evaluate.detection_ap import ImageDetections, detection_ap  # noqa: E402
from repmet.evaluate.region_detections import detect_cached  # noqa: E402
from repmet.methods import open_checkpoint  # noqa: E402
from repmet.methods.detector_regions import cache_regions, enrolled_representatives  # noqa: E402
from repmet.ops.kmeans import padded_centres  # noqa: E402

ckpt, folder_name, sup_split, test_split = sys.argv[1:5]
episodes = int(sys.argv[5]) if len(sys.argv) > 5 else 5
pseudo_classes = [int(x) for x in (sys.argv[6] if len(sys.argv) > 6 else "0,2,4,8").split(",")]
torch.set_flush_denormal(True)
model = open_checkpoint(ckpt).model.eval()
device = torch.device("cpu")
folder = Path(default_data_root()) / folder_name
support_split, test = load_split(folder, sup_split, "voc"), load_split(folder, test_split, "voc")
names = enrollable(support_split, test, 5, 5)
ids = test.class_index(names, "enrolled")
cached = cache_regions(model, test, device, False)
k = model.region_gallery.reps_per_class
support_cache: dict = {}


def negatives(support) -> torch.Tensor:
    """Embeddings of the support images' regions that overlap no annotated box (IoU < 0.3)."""
    from torchvision.ops import box_iou

    images = {item.image.path: item.image for items in support.values() for item in items}
    missing = [image for path, image in images.items() if path not in support_cache]
    if missing:
        for image, regions in zip(missing, cache_regions(model, DetectionSplit(missing, test.class_names, ""), device,
                                                         False)):
            support_cache[image.path] = (image, regions)
    out = []
    for path in images:
        image, regions = support_cache[path]
        valid = regions.objectness > -1  # padding rows are marked INVALID (negative)
        scale_h = regions.image_size[0] / regions.original_size[0]
        scale_w = regions.image_size[1] / regions.original_size[1]
        truth = torch.as_tensor(image.boxes, dtype=torch.float32) * torch.tensor([scale_w, scale_h, scale_w, scale_h])
        if len(truth):  # not an object, nor mostly inside one (a part of an object is no negative)
            inside = _intersection(regions.boxes, truth) / _area(regions.boxes)[:, None].clamp(min=1e-6)
            overlap = torch.maximum(box_iou(regions.boxes, truth), inside).max(dim=1).values
        else:
            overlap = torch.zeros(len(regions.boxes))
        out.append(regions.embeddings[valid & (overlap < 0.3)])
    return torch.cat(out)


def _area(boxes):
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def _intersection(a, b):
    low = torch.maximum(a[:, None, :2], b[None, :, :2])
    high = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    return (high - low).clamp(min=0).prod(dim=2)


results = {m: {1: [], 5: []} for m in pseudo_classes}
for shot in (1, 5):
    for episode in range(episodes):
        support = sample_support(support_split, names, shot, 0, episode)
        reps = enrolled_representatives(model, support, k, 0, device)
        pool = negatives(support)
        for m in pseudo_classes:
            if m == 0 or len(pool) < m * k:
                extra, label_map = reps, list(ids)
            else:
                centres = padded_centres(pool, m * k, m * k, seed=episode).reshape(m, k, -1)
                extra, label_map = torch.cat([reps, centres]), list(ids) + [-1] * m
            found = [ImageDetections(f.boxes[f.labels >= 0], f.scores[f.labels >= 0], f.labels[f.labels >= 0])
                     for f in detect_cached(model, cached, extra, label_map)]  # the pseudo-classes' boxes dropped
            results[m][shot].append(detection_ap(test, found, ids)["ap50"])
        print(shot, episode, {m: round(100 * results[m][shot][-1], 1) for m in pseudo_classes}, len(pool), flush=True)

print(f"\n{ckpt} on {test.description}: {len(names)} classes, {episodes} episodes; pseudo-classes of K = {k} "
      f"representatives from the support images' regions overlapping no box\n")
print("| pseudo-classes | AP50 K=1 | AP50 K=5 |")
print("|---:|---:|---:|")
for m in pseudo_classes:
    (a, ca), (b, cb) = mean_and_ci95(results[m][1]), mean_and_ci95(results[m][5])
    print(f"| {m} | {100 * a:.1f} +- {100 * ca:.1f} | {100 * b:.1f} +- {100 * cb:.1f} |")
