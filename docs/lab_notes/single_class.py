"""Diagnostic: one class enrolled alone (a user with one kind of object), against the same class
enrolled beside the others, on cached regions, paired episodes; no base classes in the gallery.

    python docs/lab_notes/single_class.py CHECKPOINT FOLDER SUPPORT_SPLIT TEST_SPLIT CLASSES [EPISODES]
"""
import sys

from cached_setting import episode_gallery, open_setting

from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached

setting = open_setting(*sys.argv[1:6])
episodes = int(sys.argv[6]) if len(sys.argv) > 6 else 5
model, test, cached, names, ids = setting.model, setting.test, setting.cached, setting.names, setting.ids
together, alone = {n: [] for n in names}, {n: [] for n in names}
for episode in range(episodes):
    _, reps, label_map = episode_gallery(setting, 5, episode)
    per_class = detection_ap(test, detect_cached(model, cached, reps, label_map), ids)["per_class_ap50"]
    for position, (name, cid) in enumerate(zip(names, ids)):
        together[name].append(per_class[name])
        found = detect_cached(model, cached, reps[position:position + 1], [cid])
        alone[name].append(detection_ap(test, found, [cid])["ap50"])
for name in names:
    print(f"{name:>12}: 5-shot AP50 enrolled with the others {100 * mean_and_ci95(together[name])[0]:.1f}, "
          f"alone {100 * mean_and_ci95(alone[name])[0]:.1f}", flush=True)
