"""Oxford Flowers 102 (Nilsback and Zisserman 2008) with its official split.

``ROOT/flowers-102/``: ``jpg/image_NNNNN.jpg``, ``imagelabels.mat`` (``labels``, 1..102)
and ``setid.mat`` (``trnid`` 1020 / ``valid`` 1020 / ``tstid`` 6149, 1-based image ids).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repmet.data.download import download_file
from repmet.data.labeled_images import LabeledImages, require_images
from repmet.data.matfile import read_mat
from repmet.errors import UserError

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
LAYOUT = "expected jpg/image_NNNNN.jpg, imagelabels.mat and setid.mat (the official layout)"
SPLIT_KEYS = {"train": ("trnid",), "val": ("valid",), "test": ("tstid",), "trainval": ("trnid", "valid")}


def load_flowers102(root: str | Path, split: str, download: bool = True) -> LabeledImages:
    if split not in SPLIT_KEYS:
        raise UserError(f"unknown Flowers 102 split {split!r}; choose one of {', '.join(SPLIT_KEYS)}")
    folder = Path(root).expanduser() / "flowers-102"
    if download:
        _download_missing(folder)
    if not (folder / "jpg").is_dir():
        raise UserError(f"Flowers 102 not found in {folder}: no jpg/ folder; {LAYOUT}")
    labels = read_mat(folder / "imagelabels.mat", ("labels",), LAYOUT)["labels"].ravel().astype(np.int64)
    setid = read_mat(folder / "setid.mat", ("trnid", "valid", "tstid"), LAYOUT)
    ids = np.sort(np.concatenate([setid[key].ravel() for key in SPLIT_KEYS[split]]).astype(np.int64))
    if ids.min() < 1 or ids.max() > len(labels):
        raise UserError(f"{folder / 'setid.mat'} refers to images beyond the {len(labels)} in imagelabels.mat")
    paths = [folder / "jpg" / f"image_{i:05d}.jpg" for i in ids]
    require_images(paths, f"setid.mat ({split} split)", LAYOUT)
    class_names = [f"{c:03d}" for c in range(1, 103)]
    return LabeledImages(paths, labels[ids - 1] - 1, class_names, f"Flowers 102 {split} ({folder})")


def _download_missing(folder: Path) -> None:
    import tarfile

    if not (folder / "jpg").is_dir():
        archive = folder / "102flowers.tgz"
        download_file(URL + "102flowers.tgz", archive, what="Flowers 102 images")
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        archive.unlink()
    for name in ("imagelabels.mat", "setid.mat"):
        if not (folder / name).is_file():
            download_file(URL + name, folder / name, what=f"Flowers 102 {name}")
