"""A split of an image-classification dataset: image paths with labels from one sorted global class list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repmet.errors import UserError


@dataclass(frozen=True)
class LabeledImages:
    """``paths[i]`` has label ``labels[i]`` (an index into ``class_names``, the dataset's
    full sorted class list, identical for every split)."""

    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]
    description: str

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: np.ndarray, description: str) -> "LabeledImages":
        index = np.flatnonzero(keep)
        return LabeledImages([self.paths[i] for i in index], self.labels[index], self.class_names, description)

    def with_classes(self, first: int, last: int) -> "LabeledImages":
        """Only classes ``first..last`` (1-based, inclusive, as datasets number them)."""
        keep = (self.labels >= first - 1) & (self.labels <= last - 1)
        return self.subset(keep, f"{self.description}, classes {first}-{last}")


def require_images(paths: list[Path], listed_in: str, hint: str = "") -> None:
    """Stop with one message when images a split file lists are not on disk."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        suffix = f"; {hint}" if hint else ""
        raise UserError(f"{len(missing)} images listed in {listed_in} are missing, e.g. {missing[0]}{suffix}")
