"""Diagnostic: one class enrolled alone (a user with one kind of object), against the same class
enrolled beside the others, on cached regions, paired episodes; no base classes in the gallery.

    python docs/lab_notes/single_class.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT CLASSES [EPISODES]
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, "benchmarks")
from detection_transfer import load_split  # noqa: E402

from repmet.data import default_data_root  # noqa: E402
from repmet.data.detection import sample_support  # noqa: E402
from repmet.evaluate.confidence import mean_and_ci95  # noqa: E402
from repmet.evaluate.detection_ap import detection_ap  # noqa: E402
from repmet.evaluate.region_detections import detect_cached  # noqa: E402
from repmet.methods import open_checkpoint  # noqa: E402
from repmet.methods.detector_regions import cache_regions, enrolled_representatives  # noqa: E402

torch.set_flush_denormal(True)
trained = open_checkpoint(sys.argv[1])
model = trained.model.eval()
folder = Path(default_data_root()) / sys.argv[2]
support_split, test = load_split(folder, sys.argv[3], "voc"), load_split(folder, sys.argv[4], "voc")
names = sys.argv[5].split(",")
episodes = int(sys.argv[6]) if len(sys.argv) > 6 else 5
ids = test.class_index(names, "enrolled")
cached = cache_regions(model, test, torch.device("cpu"), False)
k = model.region_gallery.reps_per_class
together, alone = {n: [] for n in names}, {n: [] for n in names}
for episode in range(episodes):
    support = sample_support(support_split, names, 5, 0, episode)
    reps = enrolled_representatives(model, support, k, 0, torch.device("cpu"))
    per_class = detection_ap(test, detect_cached(model, cached, reps, list(ids)), ids)["per_class_ap50"]
    for position, (name, cid) in enumerate(zip(names, ids)):
        together[name].append(per_class[name])
        found = detect_cached(model, cached, reps[position:position + 1], [cid])
        alone[name].append(detection_ap(test, found, [cid])["ap50"])
for name in names:
    print(f"{name:>12}: 5-shot AP50 enrolled with the others {100 * mean_and_ci95(together[name])[0]:.1f}, "
          f"alone {100 * mean_and_ci95(alone[name])[0]:.1f}", flush=True)
