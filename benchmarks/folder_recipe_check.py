"""The shipped frozen-feature recipes on your own fine-grained data: train
``repmet_flowers_lite0_cpu`` and ``magnet_flowers_lite0_cpu`` with only their data section
changed to an image folder (``ROOT/{train,val,test}/<class>/<image>``), and compare their
closed-set test accuracy with a linear probe and the nearest class mean on the same frozen
EfficientNet-Lite0 features.

    python benchmarks/folder_recipe_check.py --root ROOT [--out runs/folder_check] [--set key=value ...]

A folder without ``val/`` (train and test only) gets ``data.val_fraction=0.15``: 15% of each
class's training images are held out for validation, and the recipes, the probe and the class
means all train on the rest. ``--set`` overrides go to both configs. Prints one table; every
run's folder stays under ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from repmet.methods.config_loading import load_config
from repmet.data import load_labeled_classes
from repmet.evaluate.registry import evaluate_trained
from repmet.evaluate.feature_baselines import linear_probe_accuracy, nearest_class_mean_accuracy, raw_backbone_features
from repmet.methods.base import EvalRequest
from repmet.methods.trained import open_checkpoint
from repmet.train.batch_trainer import BatchTrainer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("repmet_flowers_lite0_cpu", "magnet_flowers_lite0_cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="ROOT/{train,val,test}/<class>/<image>")
    parser.add_argument("--out", default="runs/folder_check")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    data = ["data.dataset=folder", f"data.root={Path(args.root).resolve()}"]
    if not (Path(args.root) / "val").is_dir() and not any(o.startswith("data.val_") for o in args.overrides):
        print(f"{args.root} has no val folder: holding out 15% of each class's training images (data.val_fraction)")
        data.append("data.val_fraction=0.15")
    rows = []
    for name in RECIPES:
        config = load_config(PROJECT_ROOT / "configs" / f"{name}.yaml", [*data, *args.overrides])
        start = time.perf_counter()
        out = Path(args.out) / name
        trained = BatchTrainer(config, out, progress=not args.no_progress, overwrite=True).fit()
        seconds = time.perf_counter() - start
        model = open_checkpoint(trained["checkpoint"])
        result = evaluate_trained(model, EvalRequest(progress=not args.no_progress))
        rows.append((name, f"{100 * result['accuracy']:.2f}", f"{seconds:.0f} s (features cached or not)"))

    d = config.data

    def features(split: str):
        images = load_labeled_classes(d, split)
        x = raw_backbone_features(config, images.paths, progress=not args.no_progress)
        return x, torch.from_numpy(images.labels), len(images.class_names)

    train_x, train_y, classes = features(d.train_split)
    test_x, test_y, _ = features(d.test_split)
    held_out = f" ({d.val_fraction:g} of train held out for validation)" if d.val_fraction else ""
    print(f"image folder {args.root}: {len(train_y)} training images{held_out}, {len(test_y)} test images, "
          f"{classes} classes")
    print("| on the same frozen EfficientNet-Lite0 features | test accuracy % | train wall time |")
    print("|---|---|---|")
    for row in rows:
        print(f"| `{row[0]}` | {row[1]} | {row[2]} |")
    print(f"| linear probe (logistic regression) | "
          f"{100 * linear_probe_accuracy(train_x, train_y, test_x, test_y, classes):.2f} | - |")
    print(f"| nearest class mean (cosine) | "
          f"{100 * nearest_class_mean_accuracy(train_x, train_y, test_x, test_y, classes):.2f} | - |")


if __name__ == "__main__":
    main()
