"""A trained few-shot detector on a detection set it was not evaluated on: enroll classes from K boxes
of one split, detect them in another, as a user with their own data would. Prints the enrolled
classes' AP50 per K (mean and 95% CI over seeded episodes) beside the fine-tuned linear
classifier (TFA) on the same regions and support boxes, and the recall of the detector's regions.

    python benchmarks/detection_transfer.py CHECKPOINT --folder indoor85-voc --support-split trainval \
        --test-split test [--shots 1,3,5] [--episodes 10] [--min-boxes 5] [--with-base] \
        [--sigma S] [--enroll-reps K] [--no-baseline] [--thresholds 0.1,0.2,0.3,0.5] [--json OUT.json]
        [--compare objectness_power=1,0.5 --compare nms_iou=0.5,0.4]   (paired settings, one table)

Classes: every class with at least ``--min-boxes`` (and at least max K) non-difficult boxes in the
support split and one in the test split, or ``--classes a,b,c``. ``--with-base`` keeps the trained
base classes in the gallery as distractors (the README's fsod-mini episodes do); otherwise only the
enrolled classes compete. ``--sigma`` / ``--enroll-reps`` override the checkpoint's temperature and
the k-means centres per enrolled class (the rest of the gallery's K repeat the last centre), for
measuring them; the checkpoint is not changed. A second table gives the operating points: the
precision and recall (IoU 0.5, enrolled classes) of the boxes scoring at least each of
``--thresholds``, mean over episodes: what a user who keeps boxes above a threshold gets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from repmet.annotations import load_coco_detection, load_voc_detection
from repmet.data import default_data_root
from repmet.data.detection import sample_support
from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.region_detections import detect_cached, region_recall
from repmet.methods.detector_regions import cache_regions, enrolled_representatives
from repmet.evaluate.detection_ap import detection_ap, precision_recall_at
from repmet.evaluate.linear_finetune_baseline import (detect_with_linear_classifier, fine_tune_linear_classifier,
                                                      support_region_features)
from repmet.methods import open_checkpoint


def load_split(folder: Path, split: str, fmt: str):
    if fmt == "voc":
        return load_voc_detection(folder, split)
    return load_coco_detection(folder / f"{split}.json", folder / "images", f"{folder.name} {split}")


def enrollable(support, test, shots: int, min_boxes: int) -> list[str]:
    need = max(shots, min_boxes)
    counts = support.box_counts(include_difficult=False)
    in_test = test.box_counts(include_difficult=False)
    return [name for c, name in enumerate(support.class_names)
            if counts[c] >= need and name in test.class_names and in_test[test.class_names.index(name)] > 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--folder", required=True, help="dataset folder (under --data-root unless absolute)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--format", choices=("voc", "coco"), default="voc")
    parser.add_argument("--support-split", default="trainval")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--shots", default="1,3,5")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--min-boxes", type=int, default=5)
    parser.add_argument("--classes", default=None)
    parser.add_argument("--with-base", action="store_true")
    parser.add_argument("--sigma", type=float, default=None)
    parser.add_argument("--enroll-reps", type=int, default=None)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--thresholds", default="0.1,0.2,0.3,0.5")
    parser.add_argument("--objectness-power", type=float, default=None,
                        help="score = posterior x objectness^p (default: the checkpoint's detection.objectness_power)")
    parser.add_argument("--compare", action="append", default=[], metavar="FIELD=V1,V2",
                        help="e.g. objectness_power=1,0.5 or nms_iou=0.5,0.4 (a scoring field of the detector's "
                             "size; repeat for a grid): RepMet AP50 for each setting on the same regions and "
                             "episodes (paired), then stop")
    parser.add_argument("--regions", type=int, default=None,
                        help="regions classified per image (default: the checkpoint's regions_per_image)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    shots = [int(s) for s in args.shots.split(",")]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    trained = open_checkpoint(args.checkpoint)
    model = trained.model.eval()
    if args.regions is not None:
        model.size = dataclasses.replace(model.size, regions_per_image=args.regions)
    if args.objectness_power is not None:
        model.size = dataclasses.replace(model.size, objectness_power=args.objectness_power)
    gallery = model.region_gallery
    if args.sigma is not None:
        gallery.sigma = args.sigma
    k = gallery.reps_per_class
    enroll_k = min(args.enroll_reps or k, k)
    folder = Path(args.folder) if Path(args.folder).is_absolute() else Path(args.data_root or default_data_root()) / args.folder
    support_split, test = load_split(folder, args.support_split, args.format), load_split(folder, args.test_split,
                                                                                          args.format)
    names = args.classes.split(",") if args.classes else enrollable(support_split, test, max(shots), args.min_boxes)
    ids = test.class_index(names, "enrolled classes")
    device = torch.device("cpu")
    start = time.perf_counter()
    cached = cache_regions(model, test, device, True)
    regions_s = time.perf_counter() - start
    recall = region_recall(cached, test, ids)
    base = gallery.gallery().detach().clone()
    if args.compare:
        compare_settings(args, model, cached, support_split, test, names, ids, base, k, enroll_k, recall)
        return
    support_regions: dict = {}  # the baseline's support images recur across episodes and K
    rows = []
    for shot in shots:
        ours, tfa, enroll_ms, operating = [], [], [], []
        for episode in range(args.episodes):
            support = sample_support(support_split, names, shot, args.seed, episode)
            t0 = time.perf_counter()
            reps = enrolled_representatives(model, support, k, args.seed, device, centres=enroll_k)
            enroll_ms.append(1000 * (time.perf_counter() - t0) / (shot * len(names)))
            label_map = list(ids)
            if args.with_base:
                reps = torch.cat([base, reps])
                label_map = [-1] * len(base) + label_map
            found = detect_cached(model, cached, reps, label_map)
            ours.append(detection_ap(test, found, ids)["ap50"])
            operating.append(precision_recall_at(test, found, ids, thresholds))
            if not args.no_baseline:
                features, labels = support_region_features(model, support, device, support_regions)
                classifier = fine_tune_linear_classifier(features, labels, len(names), seed=args.seed + episode)
                tfa.append(detection_ap(test, detect_with_linear_classifier(model, classifier, cached, ids), ids)["ap50"])
        row = {"shot": shot, "episodes": args.episodes, "ap50": mean_and_ci95(ours), "per_episode": ours,
               "enroll_ms_per_box": float(np.median(enroll_ms)),
               "operating_points": [{"threshold": t, "precision": float(np.mean([e[i][0] for e in operating])),
                                     "recall": float(np.mean([e[i][1] for e in operating])),
                                     "boxes_per_image": float(np.mean([e[i][2] for e in operating])) / len(test)}
                                    for i, t in enumerate(thresholds)]}
        if tfa:
            row["tfa_ap50"] = mean_and_ci95(tfa)
        rows.append(row)
        print(f"{shot}-shot: RepMet {100 * row['ap50'][0]:.1f} +- {100 * row['ap50'][1]:.1f}"
              + (f", TFA {100 * row['tfa_ap50'][0]:.1f} +- {100 * row['tfa_ap50'][1]:.1f}" if tfa else ""), flush=True)
    print(f"\n{trained.config.name} on {test.description}: {len(names)} enrolled classes ({', '.join(names)}), "
          f"sigma {gallery.sigma}, {enroll_k} centre(s) per class, {'with' if args.with_base else 'without'} the "
          f"base classes; regions of {len(test)} images in {regions_s:.0f} s; recall of the regions at IoU 0.5: "
          f"{100 * recall:.1f}%\n")
    print("| K | episodes | RepMet AP50 | TFA AP50 | enroll ms per box |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        tfa_text = f"{100 * row['tfa_ap50'][0]:.1f} +- {100 * row['tfa_ap50'][1]:.1f}" if "tfa_ap50" in row else "-"
        print(f"| {row['shot']} | {row['episodes']} | {100 * row['ap50'][0]:.1f} +- {100 * row['ap50'][1]:.1f} | "
              f"{tfa_text} | {row['enroll_ms_per_box']:.0f} |")
    print("\nOperating points (enrolled classes, IoU 0.5, mean over episodes): precision / recall / boxes per "
          "image kept\n")
    print("| K | " + " | ".join(f"score >= {t:g}" for t in thresholds) + " |")
    print("|---:|" + "---:|" * len(thresholds))
    for row in rows:
        print(f"| {row['shot']} | " + " | ".join(f"{100 * o['precision']:.0f}% / {100 * o['recall']:.0f}% / "
                                                 f"{o['boxes_per_image']:.1f}" for o in row["operating_points"]) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "folder": str(folder),
                                               "classes": names, "sigma": gallery.sigma, "enroll_reps": enroll_k,
                                               "with_base": args.with_base, "region_recall50": recall,
                                               "rows": rows}, indent=1))


# Fields that change only how cached regions are scored, so one set of regions serves every setting.
SCORING_FIELDS = ("objectness_power", "nms_iou", "score_threshold")


def parse_grid(specs: list[str]) -> list[dict[str, float]]:
    """``["a=1,2", "b=3"]`` -> every combination, as ``[{"a": 1, "b": 3}, {"a": 2, "b": 3}]``."""
    grid: list[dict[str, float]] = [{}]
    for spec in specs:
        field, _, values = spec.partition("=")
        if field not in SCORING_FIELDS or not values:
            raise SystemExit(f"--compare {spec!r}: write FIELD=V1,V2 with FIELD one of {', '.join(SCORING_FIELDS)}")
        grid = [{**setting, field: float(v)} for setting in grid for v in values.split(",")]
    return grid


def compare_settings(args, model, cached, support_split, test, names, ids, base, k, enroll_k, recall) -> None:
    """AP50 per K for each scoring setting on the same cached regions and support episodes."""
    settings = parse_grid(args.compare)
    shots = [int(s) for s in args.shots.split(",")]
    table: list[dict] = [{} for _ in settings]
    for shot in shots:
        for episode in range(args.episodes):
            support = sample_support(support_split, names, shot, args.seed, episode)
            reps = enrolled_representatives(model, support, k, args.seed, torch.device("cpu"), centres=enroll_k)
            label_map = list(ids)
            if args.with_base:
                reps, label_map = torch.cat([base, reps]), [-1] * len(base) + label_map
            for row, setting in zip(table, settings):
                model.size = dataclasses.replace(model.size, **setting)
                found = detect_cached(model, cached, reps, label_map)
                row.setdefault(shot, []).append(detection_ap(test, found, ids)["ap50"])
    print(f"\n{test.description}: {len(names)} enrolled classes, {'with' if args.with_base else 'without'} the base "
          f"classes, {args.episodes} episodes (the same for every setting); region recall at IoU 0.5: "
          f"{100 * recall:.1f}%\n")
    fields = list(settings[0])
    print("| " + " | ".join(fields) + " | " + " | ".join(f"AP50 K={s}" for s in shots) + " |")
    print("|" + "---:|" * (len(fields) + len(shots)))
    for setting, row in zip(settings, table):
        cells = [mean_and_ci95(row[s]) for s in shots]
        print("| " + " | ".join(f"{setting[f]:g}" for f in fields) + " | "
              + " | ".join(f"{100 * m:.1f} +- {100 * c:.1f}" for m, c in cells) + " |")


if __name__ == "__main__":
    main()
