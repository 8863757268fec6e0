"""Oxford Flowers 102 re-split as an image folder with more training images per class than its
official 10 (``OUT/{train,test}/<class>/<image>``, symbolic links, no val: the folder check then
holds validation images out of train), to check the fine-grained recipes in the regime of
larger user sets (e.g. 30 images per class, as in the bird set of issue 12).

    python benchmarks/make_flowers_folder.py ../shared/data OUT [--train-per-class 30]

Train: the official train and val images of each class, topped up with the first test images
of the class (by file name) to ``--train-per-class``; test: the class's other test images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repmet.data import load_labeled_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-per-class", type=int, default=30)
    args = parser.parse_args()
    trainval = load_labeled_split("flowers102", "trainval", args.data_root, download=False)
    test = load_labeled_split("flowers102", "test", args.data_root, download=False)
    counts = {"train": 0, "test": 0}
    for label, name in enumerate(trainval.class_names):
        own = sorted(p for p, y in zip(trainval.paths, trainval.labels) if y == label)
        others = sorted(p for p, y in zip(test.paths, test.labels) if y == label)
        top_up = max(0, args.train_per_class - len(own))
        for split, paths in (("train", own[:args.train_per_class] + others[:top_up]), ("test", others[top_up:])):
            folder = args.out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for path in paths:
                (folder / path.name).symlink_to(path.resolve())
            counts[split] += len(paths)
    print(f"{args.out}: {counts['train']} train / {counts['test']} test images over {len(trainval.class_names)} classes")


if __name__ == "__main__":
    main()
