"""Calibration for the Flowers results: what the frozen EfficientNet-Lite0 features give
without metric learning.

    python benchmarks/flowers_feature_baselines.py

Uses the same cached features as the training configs (centre crop, 224 px). Prints a
linear probe (multinomial logistic regression, L-BFGS, standardised features) trained on
train and on train + val, the nearest class mean, and 5-way few-shot episodes on the
held-out classes 81-102 with L2-normalised raw features as embeddings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from repmet.methods.config_loading import load_config
from repmet.data import load_labeled_split
from repmet.evaluate.feature_baselines import linear_probe_accuracy, nearest_class_mean_accuracy, raw_backbone_features
from repmet.evaluate.fewshot import fewshot_episodes

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args()
    # the frozen-feature recipes' backbone and preprocessing, so the rows are theirs
    config = load_config(PROJECT_ROOT / "configs" / "repmet_flowers_lite0_cpu.yaml")

    def features(split: str, classes: tuple[int, int] | None = None):
        images = load_labeled_split("flowers102", split, args.data_root)
        if classes:
            images = images.with_classes(*classes)
        x = raw_backbone_features(config, images.paths)
        return x, torch.from_numpy(images.labels)

    test_x, test_y = features("test")
    print("| baseline on frozen EfficientNet-Lite0 features | trained on | Flowers test accuracy % |")
    print("|---|---|---|")
    for split in ("train", "trainval"):
        x, y = features(split)
        probe = linear_probe_accuracy(x, y, test_x, test_y, 102)
        ncm = nearest_class_mean_accuracy(x, y, test_x, test_y, 102)
        print(f"| linear probe (logistic regression) | {split} | {100 * probe:.2f} |")
        print(f"| nearest class mean (cosine) | {split} | {100 * ncm:.2f} |")

    parts = [features(split, (81, 102)) for split in ("trainval", "test")]
    held_x = F.normalize(torch.cat([p[0] for p in parts]), dim=1)
    held_y = torch.cat([p[1] for p in parts]).numpy()
    print()
    print("| few-shot on classes 81-102, raw L2-normalised features | accuracy % (95% CI) |")
    print("|---|---|")
    for shot in (1, 5):
        accuracy, ci95 = fewshot_episodes(held_x, held_y, 5, shot, 15, args.episodes, 0, 1)
        print(f"| 5-way {shot}-shot, {args.episodes} episodes | {100 * accuracy:.2f} +- {100 * ci95:.2f} |")


if __name__ == "__main__":
    main()
