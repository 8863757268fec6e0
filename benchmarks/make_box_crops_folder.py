"""Turn a detection set (Pascal VOC layout) into an image-classification folder of its box
crops, ``OUT/{train,val,test}/<class>/<image>_<box>.jpg``, for checking the fine-grained recipes
on data other than Flowers (``benchmarks/folder_recipe_check.py``).

    python benchmarks/make_box_crops_folder.py ../shared/data/fsod-mini OUT [--min-side 48]
    python benchmarks/make_box_crops_folder.py ../shared/data/indoor85-voc OUT --splits trainval test

Each box is cropped with 10% context on every side; boxes smaller than ``--min-side`` pixels and
difficult boxes are skipped. The detection set's train split gives train and val crops (every
fifth crop of a class goes to val), its test split the test crops; ``--per-class`` caps each
class in each split (evenly spaced picks, so the cap does not take one image's boxes only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from repmet.annotations.voc import load_voc_detection
from repmet.imaging import open_rgb

CONTEXT = 0.1


def crops(root: Path, split: str, min_side: int):
    data = load_voc_detection(root, split)
    for image in data.images:
        for index, (box, label, difficult) in enumerate(zip(image.boxes, image.labels, image.difficult)):
            x1, y1, x2, y2 = box.tolist()
            if difficult or min(x2 - x1, y2 - y1) < min_side:
                continue
            yield image, index, (x1, y1, x2, y2), data.class_names[int(label)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--min-side", type=int, default=48)
    parser.add_argument("--per-class", type=int, nargs=3, default=[60, 15, 40], metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--splits", nargs=2, default=["train", "test"], metavar=("TRAIN", "TEST"),
                        help="the detection set's splits that give the train + val crops and the test crops")
    args = parser.parse_args()
    caps = dict(zip(("train", "val", "test"), args.per_class))
    plan: dict[tuple[str, str], list] = {}
    for source, targets in ((args.splits[0], ("train", "val")), (args.splits[1], ("test",))):
        by_class: dict[str, list] = {}
        for item in crops(args.root, source, args.min_side):
            by_class.setdefault(item[3], []).append(item)
        for name, items in by_class.items():
            if len(targets) == 2:
                parts = {"train": [x for i, x in enumerate(items) if i % 5], "val": items[::5]}
            else:
                parts = {"test": items}
            for split, chosen in parts.items():
                picks = np.linspace(0, len(chosen) - 1, min(caps[split], len(chosen))).round().astype(int)
                plan[(split, name)] = [chosen[i] for i in sorted(set(picks.tolist()))]
    for (split, name), items in sorted(plan.items()):
        folder = args.out / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for image, index, (x1, y1, x2, y2), _ in items:
            pad_x, pad_y = CONTEXT * (x2 - x1), CONTEXT * (y2 - y1)
            with open_rgb(image.path) as picture:
                crop = picture.crop((max(0, round(x1 - pad_x)), max(0, round(y1 - pad_y)),
                                     min(picture.width, round(x2 + pad_x)), min(picture.height, round(y2 + pad_y))))
                crop.save(folder / f"{image.path.stem}_{index}.jpg", quality=90)
    for split in ("train", "val", "test"):
        counts = {name: len(items) for (s, name), items in sorted(plan.items()) if s == split}
        print(f"{split}: {sum(counts.values())} crops; " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
