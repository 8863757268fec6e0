"""The detector's two enrollment-time choices, measured on the same regions and episodes: sigma
(the posterior's temperature) and how many k-means centres an enrolled class keeps (1: the mean of
its shots; K: each shot its own representative up to K). Two sets: fsod-mini's novel classes with
the base gallery as distractors (the README's episodes) and indoor85-voc's classes enrolled from
its trainval boxes into an empty gallery and detected in its test images (every class with 5
trainval boxes and one test box). Choose on the second set; the first is the reported one.

    python benchmarks/detection_sweep.py CHECKPOINT [--sigmas 0.2,0.25,0.3,0.4] [--centres 1,5] \
        [--episodes 5] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from repmet.annotations import load_voc_detection
from repmet.data import default_data_root
from repmet.data.detection import sample_support
from repmet.evaluate.region_detections import detect_cached, region_recall
from repmet.methods.detector_regions import cache_regions, enrolled_representatives
from repmet.evaluate.detection_ap import detection_ap
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes

SHOTS = (1, 3, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--sigmas", default="0.2,0.25,0.3,0.4")
    parser.add_argument("--centres", default="1,5")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    trained = open_checkpoint(args.checkpoint)
    model, device = trained.model.eval(), torch.device("cpu")
    gallery = model.region_gallery
    root = default_data_root() if args.data_root is None else Path(args.data_root)
    fsod_train, fsod_test = load_voc_detection(root / "fsod-mini", "train"), load_voc_detection(root / "fsod-mini", "test")
    indoor_train = load_voc_detection(root / "indoor85-voc", "trainval")
    indoor_test = load_voc_detection(root / "indoor85-voc", "test")
    novel = list(base_novel_classes(trained.config).novel)
    novel_ids, base_ids = fsod_test.class_index(novel, "novel"), fsod_test.class_index(trained.class_names, "base")
    counts, in_test = indoor_train.box_counts(False), indoor_test.box_counts(False)
    indoor = [n for c, n in enumerate(indoor_train.class_names)
              if counts[c] >= 5 and in_test[indoor_test.class_names.index(n)] > 0]
    indoor_ids = indoor_test.class_index(indoor, "indoor")
    start = time.perf_counter()
    fsod_regions = cache_regions(model, fsod_test, device, True)
    indoor_regions = cache_regions(model, indoor_test, device, True)
    print(f"regions of {len(fsod_test) + len(indoor_test)} images in {time.perf_counter() - start:.0f} s; recall at "
          f"IoU 0.5: fsod-mini novel {100 * region_recall(fsod_regions, fsod_test, novel_ids):.1f}%, base "
          f"{100 * region_recall(fsod_regions, fsod_test, base_ids):.1f}%, indoor85-voc "
          f"{100 * region_recall(indoor_regions, indoor_test, indoor_ids):.1f}% ({len(indoor)} classes)\n")
    base = gallery.gallery().detach().clone()
    k = gallery.reps_per_class

    def enrolled(support, centres):
        return enrolled_representatives(model, support, k, 0, device, centres=centres)

    print("| sigma | centres | " + " | ".join(f"fsod novel K={s} | base K={s} | indoor K={s}" for s in SHOTS) + " |")
    print("|---:|---:|" + "---:|" * (3 * len(SHOTS)))
    for sigma in (float(s) for s in args.sigmas.split(",")):
        gallery.sigma = sigma
        for centres in (min(int(c), k) for c in args.centres.split(",")):
            cells = []
            for shot in SHOTS:
                fsod_novel, fsod_base, indoor_ap = [], [], []
                for episode in range(args.episodes):
                    reps = enrolled(sample_support(fsod_train, novel, shot, 0, episode), centres)
                    found = detect_cached(model, fsod_regions, torch.cat([base, reps]), base_ids + novel_ids)
                    fsod_novel.append(detection_ap(fsod_test, found, novel_ids)["ap50"])
                    fsod_base.append(detection_ap(fsod_test, found, base_ids)["ap50"])
                    reps = enrolled(sample_support(indoor_train, indoor, shot, 0, episode), centres)
                    found = detect_cached(model, indoor_regions, reps, indoor_ids)
                    indoor_ap.append(detection_ap(indoor_test, found, indoor_ids)["ap50"])
                cells += [f"{100 * np.mean(v):.1f}" for v in (fsod_novel, fsod_base, indoor_ap)]
            print(f"| {sigma} | {centres} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
