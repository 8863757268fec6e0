"""Diagnostic: the detector with a stride-4 pyramid level (detection.stride4_level: 16 and 23 px
anchors, small RoIs pooled from stride 4) against the shipped one, both base-trained by the
shipped config on fsod-mini + indoor85-voc trainval: metric-eval's protocol, shortened (shots 1
and 5, 5 seeded episodes, no TFA baseline): base AP50, novel AP50 per K and per class, and each
novel class's region recall at IoU 0.5.

    python docs/lab_notes/stride4_level.py CHECKPOINT [CHECKPOINT ...]

The option was removed after this measurement: check out commit 955883c to train and read such a
checkpoint again.
"""
import sys
import time

import torch

import repmet.evaluate.detection as detection_evaluation
from repmet.evaluate.detection import evaluate_detector
from repmet.evaluate.region_detections import region_recall
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes, load_detection_split

kept = {}
computing = detection_evaluation.cache_regions
detection_evaluation.cache_regions = lambda *args: kept.setdefault("regions", computing(*args))  # reused below

torch.set_flush_denormal(True)
for path in sys.argv[1:]:
    kept.clear()
    trained = open_checkpoint(path)
    config = trained.config
    test = load_detection_split(config, config.data.test_split)
    classes = base_novel_classes(config)
    start = time.perf_counter()
    result = evaluate_detector(trained, test, config.data.test_split, classes,
                               lambda: load_detection_split(config, config.data.train_split), [1, 5], 5, 0,
                               torch.device("cpu"), progress=False, baseline=False)
    seconds = time.perf_counter() - start
    cached = kept["regions"]
    recall = {name: region_recall(cached, test, test.class_index([name], "novel")) for name in classes.novel}
    print(f"### {path} (stride4_level {getattr(config.detection, 'stride4_level', False)}; {seconds:.0f} s)")
    print(f"base AP50 {100 * result['base_ap50']:.1f}; region recall @0.5: "
          + ", ".join(f"{n} {100 * r:.1f}%" for n, r in recall.items()))
    for few in result["fewshot"]:
        print(f"K={few['shot']}: novel AP50 {100 * few['novel_ap50']:.1f} +- {100 * few['novel_ap50_ci95']:.1f}, "
              f"base in the episodes {100 * few['base_ap50']:.1f}; "
              + ", ".join(f"{n} {100 * v:.1f}" for n, v in few["novel_per_class_ap50"].items()), flush=True)
