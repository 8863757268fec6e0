"""Users' own data: ``ROOT/<split>/<class>/<image>``, one sub-folder per class.

Classes are the sorted union of the class folders of every split, so labels agree
across splits even when a split lacks a class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repmet.data.labeled_images import LabeledImages
from repmet.errors import UserError
from repmet.imaging import IMAGE_SUFFIXES


def load_image_folder(root: str | Path, split: str, download: bool = True) -> LabeledImages:
    root = Path(root).expanduser()
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise UserError(f"no folder {folder}; expected {root}/<split>/<class>/<image> with one sub-folder per class "
                        f"(found: {', '.join(found) or 'nothing'}). data.train_split, data.val_split and "
                        f"data.test_split name the split folders: point the one naming {split!r} at another folder "
                        f"(e.g. --set data.val_split=valid), or, for a missing val folder, hold some training "
                        f"images out for validation (--set data.val_fraction=0.15)")
    splits = [p for p in root.iterdir() if p.is_dir()]
    class_names = sorted({c.name for s in splits for c in s.iterdir() if c.is_dir()})
    paths, labels = [], []
    for label, name in enumerate(class_names):
        class_dir = folder / name
        if class_dir.is_dir():
            images = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            paths += images
            labels += [label] * len(images)
    if not paths:
        raise UserError(f"{folder} holds no images in class sub-folders ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return LabeledImages(paths, np.array(labels, dtype=np.int64), class_names, f"image folder {folder}")
