"""Base and novel classes of a few-shot detection set, what base training may see, and seeded
K-shot support sets of the novel classes.

A detector is trained on the base classes only. An image that also shows a novel object keeps
its base boxes, and the novel boxes become *ignore* regions: the trainer must neither learn
them as objects nor sample them as background, or the novel class would be learned as
"nothing" before it is ever enrolled. Images with no base box are left out of base training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repmet.annotations.boxes import BoxedImage, DetectionSplit
from repmet.errors import UserError


@dataclass(frozen=True)
class BaseNovelClasses:
    base: tuple[str, ...]
    novel: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.base:
            raise UserError("a few-shot detection split needs at least one base class")
        both = sorted(set(self.base) & set(self.novel))
        if both:
            raise UserError(f"class {both[0]!r} is listed as both base and novel; a class is one or the other")
        for group in (self.base, self.novel):
            if len(set(group)) != len(group):
                raise UserError(f"class {next(n for n in group if group.count(n) > 1)!r} is listed twice")

    @classmethod
    def from_file(cls, path: str | Path) -> "BaseNovelClasses":
        """A class file: one name per line; a comment line (``#``) that mentions "novel" starts
        the novel classes, everything before it is base (the format of fsod-mini's classes.txt)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(f"class split file {path} does not exist")
        base, novel, current = [], [], None
        for line in path.read_text().splitlines():
            text = line.strip()
            if not text:
                continue
            if text.startswith("#"):
                current = novel if "novel" in text.lower() else base if "base" in text.lower() else current
                continue
            (current if current is not None else base).append(text)
        return cls(tuple(base), tuple(novel))

    def check_against(self, split: DetectionSplit, key: str) -> None:
        split.class_index(list(self.base), f"{key} (base)")
        split.class_index(list(self.novel), f"{key} (novel)")


@dataclass(frozen=True)
class BaseTrainingImage:
    """What base training sees of one image: object boxes (labels 0..B-1 in the order of the base
    classes, B for another class's object) and ``ignore [M, 4]`` regions (novel and difficult
    boxes)."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray


def base_training_images(split: DetectionSplit, classes: BaseNovelClasses) -> list[BaseTrainingImage]:
    """The images with an object to learn: base boxes labelled 0..B-1, and boxes of classes that
    are neither base nor novel (an extra training folder's own classes) labelled B, "another
    object", which teaches the class-agnostic detector objectness and never enters the gallery.
    Novel and difficult boxes become ignore regions."""
    base_ids = split.class_index(list(classes.base), "base classes")
    novel_ids = split.class_index(list(classes.novel), "novel classes") if classes.novel else []
    to_label = {c: i for i, c in enumerate(base_ids)}
    other = len(base_ids)
    out = []
    for image in split.images:
        learn = ~np.isin(image.labels, novel_ids) & ~image.difficult
        if not learn.any():
            continue
        out.append(BaseTrainingImage(image.path, image.width, image.height, image.boxes[learn],
                                     np.array([to_label.get(int(c), other) for c in image.labels[learn]], np.int64),
                                     image.boxes[~learn]))
    if not any((image.labels < other).any() for image in out):
        raise UserError(f"{split.description} has no image with a base-class box; check the base classes")
    return out


@dataclass(frozen=True)
class SupportBox:
    image: BoxedImage
    box: np.ndarray  # [4]


def sample_support(split: DetectionSplit, class_names: list[str], shot: int, seed: int,
                   episode: int) -> dict[str, list[SupportBox]]:
    """For each class, ``shot`` boxes (not difficult) drawn from a generator seeded by
    ``(seed, episode, class index)``, so one episode's support does not depend on the others."""
    ids = split.class_index(class_names, "few-shot classes")
    chosen = {}
    for position, (name, c) in enumerate(zip(class_names, ids)):
        pool = [(image, box) for image in split.images
                for box, label, hard in zip(image.boxes, image.labels, image.difficult) if label == c and not hard]
        if len(pool) < shot:
            raise UserError(f"{shot}-shot support for class {name!r} needs {shot} boxes, but {split.description} "
                            f"has {len(pool)}; lower the shots")
        rng = np.random.default_rng([seed, episode, position])
        chosen[name] = [SupportBox(*pool[i]) for i in rng.choice(len(pool), size=shot, replace=False)]
    return chosen
