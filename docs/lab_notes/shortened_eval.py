"""What stride4_level.py and larger_canvas.py share: metric-eval's detector protocol shortened (K = 1
and 5, 5 seeded episodes, no TFA baseline) on a trained detector, with each novel class's region
recall at IoU 0.5 from the same cached regions, printed as the notes' .txt files show it."""
import time

import torch

import repmet.evaluate.detection as detection_evaluation
from repmet.evaluate.detection import evaluate_detector
from repmet.evaluate.region_detections import region_recall
from repmet.methods.detector import base_novel_classes, load_detection_split

torch.set_flush_denormal(True)
_kept = {}
_computing = detection_evaluation.cache_regions
detection_evaluation.cache_regions = lambda *args: _kept.setdefault("regions", _computing(*args))  # reused below


def shortened_eval(trained, header: str) -> None:
    _kept.clear()
    config = trained.config
    test = load_detection_split(config, config.data.test_split)
    classes = base_novel_classes(config)
    start = time.perf_counter()
    result = evaluate_detector(trained, test, config.data.test_split, classes,
                               lambda: load_detection_split(config, config.data.train_split), [1, 5], 5, 0,
                               torch.device("cpu"), progress=False, baseline=False)
    recall = {name: region_recall(_kept["regions"], test, test.class_index([name], "novel")) for name in classes.novel}
    print(f"### {header} ({time.perf_counter() - start:.0f} s)")
    print(f"base AP50 {100 * result['base_ap50']:.1f}; region recall @0.5: "
          + ", ".join(f"{n} {100 * r:.1f}%" for n, r in recall.items()))
    for few in result["fewshot"]:
        print(f"K={few['shot']}: novel AP50 {100 * few['novel_ap50']:.1f} +- {100 * few['novel_ap50_ci95']:.1f}, "
              f"base in the episodes {100 * few['base_ap50']:.1f}; "
              + ", ".join(f"{n} {100 * v:.1f}" for n, v in few["novel_per_class_ap50"].items()), flush=True)
