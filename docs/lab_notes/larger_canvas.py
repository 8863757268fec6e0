"""Diagnostic: the shipped detector run on a larger canvas at test time (images resized so that the
shorter side is MIN unless the longer exceeds MAX, padded to MAX x MAX; base training saw 320-512),
for small objects: metric-eval's protocol shortened as in stride4_level.py (K = 1 / 5, 5 episodes,
no TFA). The 512 row is stride4_level.txt's shipped row (the same protocol).

    python docs/lab_notes/larger_canvas.py CHECKPOINT MIN MAX [REGIONS]

REGIONS: regions classified per image instead of the checkpoint's (detection.regions_per_image).
"""
import dataclasses
import sys
import time

import torch

import repmet.evaluate.detection as detection_evaluation
from repmet.evaluate.detection import evaluate_detector
from repmet.evaluate.region_detections import region_recall
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes, load_detection_split
from repmet.preprocess_spec import detection_canvas_size

kept = {}
computing = detection_evaluation.cache_regions
detection_evaluation.cache_regions = lambda *args: kept.setdefault("regions", computing(*args))  # reused below
torch.set_flush_denormal(True)
path, low, high = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
trained = open_checkpoint(path)
transform = trained.model.transform
transform.min_size, transform.max_size, transform.canvas = (low,), high, detection_canvas_size(high)
if len(sys.argv) > 4:
    trained.model.size = dataclasses.replace(trained.model.size, regions_per_image=int(sys.argv[4]))
config = trained.config
test = load_detection_split(config, config.data.test_split)
classes = base_novel_classes(config)
start = time.perf_counter()
result = evaluate_detector(trained, test, config.data.test_split, classes,
                           lambda: load_detection_split(config, config.data.train_split), [1, 5], 5, 0,
                           torch.device("cpu"), progress=False, baseline=False)
recall = {name: region_recall(kept["regions"], test, test.class_index([name], "novel")) for name in classes.novel}
print(f"### {path}, shorter side {low}, canvas {transform.canvas}, {trained.model.size.regions_per_image} regions "
      f"({time.perf_counter() - start:.0f} s)")
print(f"base AP50 {100 * result['base_ap50']:.1f}; region recall @0.5: "
      + ", ".join(f"{n} {100 * r:.1f}%" for n, r in recall.items()))
for few in result["fewshot"]:
    print(f"K={few['shot']}: novel AP50 {100 * few['novel_ap50']:.1f} +- {100 * few['novel_ap50_ci95']:.1f}, "
          f"base in the episodes {100 * few['base_ap50']:.1f}; "
          + ", ".join(f"{n} {100 * v:.1f}" for n, v in few["novel_per_class_ap50"].items()), flush=True)
