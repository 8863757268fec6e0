"""Boxed images: what every detection loader returns, whatever its on-disk format.

Boxes are ``[x1, y1, x2, y2]`` in 0-based, continuous pixel coordinates of the image as stored
(a box covering pixel columns 0..9 is ``x1 = 0, x2 = 10``), the convention of torchvision's
detection models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repmet.errors import UserError


@dataclass(frozen=True)
class BoxedImage:
    """One image: ``boxes [N, 4]`` float32, ``labels [N]`` (indices into the split's
    ``class_names``), ``difficult [N]`` (kept for evaluation, ignored in training: VOC's
    ``difficult``, COCO's ``iscrowd``)."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.boxes.shape != (n, 4) or self.difficult.shape != (n,):
            raise ValueError(f"{self.path}: boxes {self.boxes.shape}, labels {self.labels.shape} and difficult "
                             f"{self.difficult.shape} disagree")

    def keep(self, mask: np.ndarray) -> "BoxedImage":
        return BoxedImage(self.path, self.width, self.height, self.boxes[mask], self.labels[mask], self.difficult[mask])


@dataclass
class BoxRepairs:
    """Boxes a loader had to repair: clipped to the image, or dropped (no area left). Reported
    once, with the first few named, instead of silently changing the data."""

    clipped: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def report(self, where: str) -> str | None:
        if not (self.clipped or self.dropped):
            return None
        parts = []
        if self.clipped:
            parts.append(f"clipped {len(self.clipped)} boxes that crossed the image border (e.g. {self.clipped[0]})")
        if self.dropped:
            parts.append(f"dropped {len(self.dropped)} boxes with no area inside the image (e.g. {self.dropped[0]})")
        return f"{where}: " + "; ".join(parts)


def checked_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int, name: str,
                repairs: BoxRepairs) -> tuple[float, float, float, float] | None:
    """The box clipped to the image, or None (reported) when nothing of it is left."""
    clipped = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width),
               min(max(y2, 0.0), height))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        repairs.dropped.append(f"{name} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] in a {width}x{height} image")
        return None
    if clipped != (x1, y1, x2, y2):
        repairs.clipped.append(f"{name} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] in a {width}x{height} image")
    return clipped


@dataclass(frozen=True)
class DetectionSplit:
    """The images of one split, their boxes, and the dataset's sorted class list (the same for
    every split, so labels agree across splits)."""

    images: list[BoxedImage]
    class_names: list[str]
    description: str
    repairs: str | None = None  # what the loader clipped or dropped, for the user to read

    def __len__(self) -> int:
        return len(self.images)

    def box_counts(self, include_difficult: bool = True) -> np.ndarray:
        """Boxes per class ``[C]``."""
        counts = np.zeros(len(self.class_names), np.int64)
        for image in self.images:
            labels = image.labels if include_difficult else image.labels[~image.difficult]
            np.add.at(counts, labels, 1)
        return counts

    def class_index(self, names: list[str], key: str) -> list[int]:
        """Indices of ``names``; a name no annotation of the dataset has is a UserError naming ``key``."""
        unknown = [name for name in names if name not in self.class_names]
        if unknown:
            raise UserError(f"{key}: class {unknown[0]!r} has no box in {self.description}; its classes are "
                            f"{', '.join(self.class_names)}")
        return [self.class_names.index(name) for name in names]


def boxes_array(rows: list[tuple[float, float, float, float]]) -> np.ndarray:
    return np.asarray(rows, np.float32).reshape(-1, 4)


def merge_splits(splits: list[DetectionSplit]) -> DetectionSplit:
    """One split of the images of several (e.g. VOC 2007 and 2012 trainval), labels remapped to
    the sorted union of their classes."""
    if len(splits) == 1:
        return splits[0]
    class_names = sorted({name for split in splits for name in split.class_names})
    images = []
    for split in splits:
        remap = np.asarray([class_names.index(name) for name in split.class_names], np.int64)
        images += [BoxedImage(i.path, i.width, i.height, i.boxes, remap[i.labels], i.difficult) for i in split.images]
    repairs = [split.repairs for split in splits if split.repairs]
    return DetectionSplit(images, class_names, " + ".join(split.description for split in splits),
                          "\n".join(repairs) if repairs else None)

