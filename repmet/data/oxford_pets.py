"""Oxford-IIIT Pets (Parkhi et al. 2012): 37 breeds, official trainval / test split.

``ROOT/oxford-iiit-pet/``: ``images/<Breed_Name>_<n>.jpg`` and
``annotations/{trainval,test}.txt`` (lines ``<image> <class 1..37> <species> <breed id>``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repmet.data.labeled_images import LabeledImages, require_images
from repmet.errors import UserError

LAYOUT = "expected images/*.jpg and annotations/{trainval,test}.txt (the official layout)"
SPLITS = ("trainval", "test")


def load_oxford_pets(root: str | Path, split: str, download: bool = True) -> LabeledImages:
    if split not in SPLITS:
        raise UserError(f"unknown Oxford-IIIT Pets split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(root).expanduser() / "oxford-iiit-pet"
    entries = {s: _read_list(folder / "annotations" / f"{s}.txt") for s in SPLITS}
    # One class list for both splits: breed names sorted by their official class id.
    id_to_name: dict[int, str] = {}
    for rows in entries.values():
        for image, class_id in rows:
            id_to_name.setdefault(class_id, image.rsplit("_", 1)[0])
    class_ids = sorted(id_to_name)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise UserError(f"{folder / 'annotations'}: class ids are not 1..N; {LAYOUT}")
    class_names = [id_to_name[c] for c in class_ids]
    paths = [folder / "images" / f"{image}.jpg" for image, _ in entries[split]]
    require_images(paths, f"annotations/{split}.txt")
    labels = np.array([class_id - 1 for _, class_id in entries[split]], dtype=np.int64)
    return LabeledImages(paths, labels, class_names, f"Oxford-IIIT Pets {split} ({folder})")


def _read_list(path: Path) -> list[tuple[str, int]]:
    if not path.is_file():
        raise UserError(f"missing split file {path}; {LAYOUT}")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise UserError(f"{path}, line {number}: expected '<image> <class id> ...', got {line!r}")
        rows.append((parts[0], int(parts[1])))
    return rows
