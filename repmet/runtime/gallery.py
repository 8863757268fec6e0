"""The gallery: each enrolled class's K representatives, the runtime input of the distance head.

Stored as ``NAME.npz`` (``representatives [C, K, D]`` float32, ``counts [C]``; loaded with
``allow_pickle=False``) next to ``NAME.json`` (labels, shape, and the npz's sha256).
A class enrolled with fewer than K distinct representatives repeats its last one: the head
takes the minimum distance over a class's representatives, so repeats change nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repmet.atomic_write import atomic_write
from repmet.errors import UserError
from repmet.runtime.artifact import read_json_object, sha256_of
from repmet.runtime.kmeans import kmeans_numpy

GALLERY_FORMAT = "repmet-gallery-1"


@dataclass(frozen=True)
class Gallery:
    """Immutable: enrolling or removing returns a new gallery (so readers never see half a change)."""

    labels: tuple[str, ...]
    representatives: np.ndarray  # [C, K, D] float32
    counts: np.ndarray  # [C] distinct representatives per class

    @classmethod
    def empty(cls, reps_per_class: int, embedding_dim: int) -> "Gallery":
        return cls((), np.zeros((0, reps_per_class, embedding_dim), np.float32), np.zeros(0, np.int64))

    @property
    def reps_per_class(self) -> int:
        return self.representatives.shape[1]

    @property
    def embedding_dim(self) -> int:
        return self.representatives.shape[2]

    def __len__(self) -> int:
        return len(self.labels)

    def with_class(self, label: str, embeddings: np.ndarray, seed: int = 0) -> "Gallery":
        """Enroll (or replace) ``label`` from ``embeddings [N, D]``: K-means to at most K representatives."""
        k = self.reps_per_class
        centers = kmeans_numpy(embeddings, min(k, len(embeddings)), seed=seed)
        padded = np.concatenate([centers, np.repeat(centers[-1:], k - len(centers), axis=0)])
        keep = [i for i, name in enumerate(self.labels) if name != label]
        return Gallery(tuple(self.labels[i] for i in keep) + (label,),
                       np.concatenate([self.representatives[keep], padded[None]]).astype(np.float32),
                       np.concatenate([self.counts[keep], [len(centers)]]).astype(np.int64))

    def without_class(self, label: str) -> "Gallery":
        if label not in self.labels:
            raise UserError(f"label {label!r} is not enrolled (enrolled: {_preview(self.labels)})")
        keep = [i for i, name in enumerate(self.labels) if name != label]
        return Gallery(tuple(self.labels[i] for i in keep), self.representatives[keep], self.counts[keep])

    def save(self, path: str | Path) -> Path:
        """Writes ``path`` (``.npz``) and its ``.json`` sidecar atomically; returns the npz path."""
        npz = Path(path).with_suffix(".npz")
        with atomic_write(npz) as handle:
            np.savez(handle, representatives=self.representatives, counts=self.counts)
        description = {"format": GALLERY_FORMAT, "labels": list(self.labels),
                       "reps_per_class": self.reps_per_class, "embedding_dim": self.embedding_dim,
                       "representatives": npz.name, "sha256": sha256_of(npz)}
        with atomic_write(npz.with_suffix(".json")) as handle:
            handle.write(json.dumps(description, indent=1).encode())
        return npz

    @classmethod
    def load(cls, path: str | Path) -> "Gallery":
        npz, sidecar = Path(path).with_suffix(".npz"), Path(path).with_suffix(".json")
        for needed in (npz, sidecar):
            if not needed.is_file():
                raise UserError(f"gallery file {needed} is missing; a gallery is a .npz with its .json "
                                f"(written by save_gallery)")
        description = read_json_object(sidecar, "save the gallery again")
        if description.get("format") != GALLERY_FORMAT:
            raise UserError(f"{sidecar} is not a repmet gallery (format {description.get('format')!r}, "
                            f"expected {GALLERY_FORMAT!r})")
        if sha256_of(npz) != description["sha256"]:
            raise UserError(f"gallery {npz} does not match the sha256 in {sidecar}; save the gallery again")
        try:
            with np.load(npz, allow_pickle=False) as arrays:
                reps, counts = arrays["representatives"].astype(np.float32), arrays["counts"].astype(np.int64)
        except (ValueError, KeyError, OSError) as exc:
            raise UserError(f"cannot read gallery {npz}: {exc}") from None
        labels = tuple(str(x) for x in description["labels"])
        if reps.ndim != 3 or reps.shape[0] != len(labels) or counts.shape != (len(labels),):
            raise UserError(f"gallery {npz}: representatives {reps.shape} and counts {counts.shape} do not "
                            f"match the {len(labels)} labels of {sidecar}")
        return cls(labels, reps, counts)


def _preview(labels: tuple[str, ...], n: int = 10) -> str:
    if not labels:
        return "none"
    shown = ", ".join(repr(x) for x in labels[:n])
    return shown + (f", ... ({len(labels)} in all)" if len(labels) > n else "")
