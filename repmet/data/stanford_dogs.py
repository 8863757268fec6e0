"""Stanford Dogs (Khosla et al. 2011): 120 breeds, official train / test lists.

``ROOT/stanford-dogs/``: ``Images/<wnid>-<breed>/<image>.jpg`` and
``lists/{train,test}_list.mat`` (``file_list`` relative to Images/, ``labels`` 1..120).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repmet.data.labeled_images import LabeledImages, require_images
from repmet.data.matfile import read_mat
from repmet.errors import UserError

LAYOUT = "expected Images/<wnid>-<breed>/*.jpg and lists/{train,test}_list.mat (the official layout)"
SPLITS = ("train", "test")


def load_stanford_dogs(root: str | Path, split: str, download: bool = True) -> LabeledImages:
    if split not in SPLITS:
        raise UserError(f"unknown Stanford Dogs split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(root).expanduser() / "stanford-dogs"
    if not (folder / "Images").is_dir():
        raise UserError(f"Stanford Dogs not found in {folder}: no Images/ folder; {LAYOUT}")
    class_names = sorted(p.name for p in (folder / "Images").iterdir() if p.is_dir())
    content = read_mat(folder / "lists" / f"{split}_list.mat", ("file_list", "labels"), LAYOUT)
    files = [str(np.asarray(entry).ravel()[0]) for entry in content["file_list"].ravel()]
    labels = content["labels"].ravel().astype(np.int64) - 1
    for file, label in zip(files, labels):
        if file.split("/")[0] != class_names[label]:
            raise UserError(f"lists/{split}_list.mat: {file} has label {label + 1} but Images/ sorts "
                            f"{class_names[label]} there; {LAYOUT}")
    paths = [folder / "Images" / f for f in files]
    require_images(paths, f"lists/{split}_list.mat")
    return LabeledImages(paths, labels, class_names, f"Stanford Dogs {split} ({folder})")
