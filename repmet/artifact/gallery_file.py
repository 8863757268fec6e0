"""The gallery: each enrolled class's K representatives, the runtime input of the distance head.

Stored as ONE ``.npz`` file, written atomically and read with ``allow_pickle=False``:

- ``format``: "repmet-gallery-2"
- ``fingerprint``: the fingerprint of the embedding that made the representatives (a gallery
  is only meaningful with that model: another one, even of the same size, embeds elsewhere)
- ``labels``: numpy unicode array ``[C]``
- ``representatives``: float32 ``[C, K, D]``
- ``counts``: int64 ``[C]``, the distinct representatives of each class

A class enrolled with fewer than K distinct representatives repeats its last one: the head
takes the minimum distance over a class's representatives, so repeats change nothing.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from repmet.atomic_write import atomic_write
from repmet.errors import UserError
from repmet.artifact.labels import label_problem
from repmet.artifact.npz_headers import check_declared_sizes
from repmet.artifact.schema import FINGERPRINT_REQUIRED, HEX64, NO_FINGERPRINT
from repmet.numpy_kmeans import kmeans_numpy

GALLERY_FORMAT = "repmet-gallery-2"
_KEYS = ("format", "fingerprint", "labels", "representatives", "counts")
_REMEDY = "enroll the classes again and save a new gallery"


@dataclass(frozen=True)
class Gallery:
    """Immutable: enrolling or removing returns a new gallery (so readers never see half a change).

    ``fingerprint`` is the embedding fingerprint of the artifact the gallery was made with
    (``artifact.fingerprint``)."""

    labels: tuple[str, ...]
    representatives: np.ndarray  # [C, K, D] float32
    counts: np.ndarray  # [C] distinct representatives per class, int64
    fingerprint: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        problem = _problem(self.labels, self.representatives, self.counts, self.fingerprint)
        if problem:
            raise UserError(f"invalid gallery: {problem}")

    @classmethod
    def empty(cls, reps_per_class: int, embedding_dim: int, fingerprint: str) -> "Gallery":
        return cls((), np.zeros((0, reps_per_class, embedding_dim), np.float32), np.zeros(0, np.int64), fingerprint)

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
        problem = label_problem(label)
        if problem:
            raise UserError(f"cannot enroll: {problem}")
        _check_embeddings(label, embeddings, self.embedding_dim)
        k = self.reps_per_class
        centers = kmeans_numpy(embeddings, min(k, len(embeddings)), seed=seed)
        padded = np.concatenate([centers, np.repeat(centers[-1:], k - len(centers), axis=0)]).astype(np.float32)
        rest = self.without_class(label) if label in self.labels else self  # a replaced class moves to the end
        # one copy of the representatives: a gallery of a million classes is a gigabyte
        return Gallery._derived(rest.labels + (label,), np.concatenate([rest.representatives, padded[None]]),
                                np.concatenate([rest.counts, [len(centers)]]).astype(np.int64), self.fingerprint)

    def without_class(self, label: str) -> "Gallery":
        if label not in self.labels:
            raise UserError(f"label {label!r} is not enrolled (enrolled: {_preview(self.labels)})")
        at = self.labels.index(label)
        return Gallery._derived(self.labels[:at] + self.labels[at + 1:], np.delete(self.representatives, at, axis=0),
                                np.delete(self.counts, at), self.fingerprint)

    @classmethod
    def _derived(cls, labels: tuple, representatives: np.ndarray, counts: np.ndarray, fingerprint: str) -> "Gallery":
        """A gallery made from a checked one by one checked change (a label and embeddings checked
        by ``with_class``, or a removal): not checked again, since checking every label and value
        of a million-class gallery takes seconds."""
        gallery = object.__new__(cls)
        for name, value in (("labels", labels), ("representatives", representatives), ("counts", counts),
                            ("fingerprint", fingerprint)):
            object.__setattr__(gallery, name, value)
        return gallery

    def save(self, path: str | Path) -> Path:
        """Writes exactly ``path`` (a file name ending in ``.npz``) atomically: a failed or killed
        save leaves the old file. Returns the path written."""
        npz = gallery_file(path)
        arrays = {"format": np.array(GALLERY_FORMAT), "fingerprint": np.array(self.fingerprint),
                  "labels": np.array(self.labels, dtype=np.str_), "representatives": self.representatives,
                  "counts": self.counts}
        try:
            with atomic_write(npz) as handle:
                np.savez(handle, **arrays)
        except OSError as exc:
            raise UserError(f"cannot save the gallery to {npz} ({exc}); the file there before, if any, is "
                            f"unchanged") from None
        return npz

    @classmethod
    def load(cls, path: str | Path, shape: tuple[int, int] | None = None) -> "Gallery":
        """The gallery saved at ``path`` (a ``.npz`` file), or a UserError saying what is wrong.
        ``shape``: the (K, D) its model needs; the file's declared sizes are checked against it and
        the limits before anything is inflated."""
        npz = gallery_file(path)
        if not npz.is_file():
            raise UserError(f"gallery file {npz} is missing; save one with save_gallery or "
                            f"metric-predict --save-gallery")
        check_declared_sizes(npz, shape)
        arrays = _read_arrays(npz)
        fmt = _scalar_string(arrays["format"])
        if fmt != GALLERY_FORMAT:
            raise UserError(f"{npz} is not a repmet gallery of this version (format {fmt!r}, expected "
                            f"{GALLERY_FORMAT!r}); {_REMEDY}")
        fingerprint = _scalar_string(arrays["fingerprint"])
        if fingerprint is None:
            raise UserError(f"gallery {npz}: its fingerprint is not a string; {_REMEDY}")
        labels, reps, counts = arrays["labels"], arrays["representatives"], arrays["counts"]
        problem = _array_problem(labels, reps, counts)
        if problem is None:
            labels, reps, counts = tuple(str(x) for x in labels), reps.astype(np.float32), counts.astype(np.int64)
            problem = _problem(labels, reps, counts, fingerprint)
        if problem:
            raise UserError(f"gallery {npz}: {problem}; {_REMEDY}")
        return cls(labels, reps, counts, fingerprint)


def gallery_file(path: str | Path) -> Path:
    """``path`` itself, if it names a gallery file: it ends in ``.npz`` and is not a folder (a gallery
    is never written anywhere but where it was asked)."""
    npz = Path(path)
    if npz.suffix == ".json" and npz.with_suffix(".npz").is_file():
        raise UserError(f"{npz} belongs to a gallery saved by an older repmet (a .npz with a .json beside it), "
                        f"which this version no longer reads; {_REMEDY}")
    if npz.suffix != ".npz":
        raise UserError(f"a gallery is a .npz file: {npz} does not end in .npz; give a name such as "
                        f"{npz.name + '.npz' if npz.name else 'gallery.npz'}")
    if npz.is_dir():
        raise UserError(f"{npz} is a folder; give the gallery's file name, such as {npz / 'gallery.npz'}")
    return npz


# ---------------------------------------------------------------- reading and checking
def _read_arrays(npz: Path) -> dict[str, np.ndarray]:
    """The five arrays of a gallery file; a UserError for anything else (never unpickles)."""
    with open(npz, "rb") as f:
        if f.read(2) != b"PK":  # every .npz is a zip archive
            raise UserError(f"{npz} is not a repmet gallery (not an .npz file); {_REMEDY}")
    try:
        data = np.load(npz, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{npz} is not a repmet gallery (cannot read it as .npz: {exc}); {_REMEDY}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
        raise UserError(f"{npz} is not a repmet gallery (it holds one array, not a gallery .npz); {_REMEDY}")
    with data:
        names = set(data.files)
        if "format" not in names and {"representatives", "counts"} <= names:
            raise UserError(f"{npz} was saved by an older repmet (a .npz with a .json beside it), which this "
                            f"version no longer reads; {_REMEDY}")
        missing = [key for key in _KEYS if key not in names]
        if missing:
            raise UserError(f"{npz} is not a repmet gallery (it lacks {', '.join(missing)}); {_REMEDY}")
        return {key: _read_one(data, key, npz) for key in _KEYS}


def _read_one(data: np.lib.npyio.NpzFile, key: str, npz: Path) -> np.ndarray:
    try:
        return data[key]
    except ValueError:  # object arrays need pickle, which a gallery never uses
        raise UserError(f"gallery {npz}: {key} holds Python objects, not a plain array; {_REMEDY}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # e.g. a bad CRC or deflate stream
        raise UserError(f"gallery {npz} is damaged ({key}: {exc}); {_REMEDY}") from None


def _scalar_string(array: np.ndarray) -> str | None:
    return str(array[()]) if array.ndim == 0 and array.dtype.kind == "U" else None


def _array_problem(labels: np.ndarray, reps: np.ndarray, counts: np.ndarray) -> str | None:
    """What is wrong with the stored arrays' kinds (before they are converted), or None."""
    if labels.ndim != 1 or labels.dtype.kind != "U":
        return f"labels must be a 1-D array of strings, got {labels.dtype} {labels.shape}"
    if reps.dtype.kind != "f":
        return f"representatives must be floats, got {reps.dtype}"
    if counts.dtype.kind not in "iu":
        return f"counts must be integers, got {counts.dtype}"
    return None


def _problem(labels: tuple, reps: np.ndarray, counts: np.ndarray, fingerprint: str) -> str | None:
    """What makes these not a gallery, as a phrase, or None."""
    if not isinstance(reps, np.ndarray) or reps.ndim != 3 or reps.dtype != np.float32:
        return f"representatives must be a float32 array [classes, K, dim], got {_describe_array(reps)}"
    c, k, d = reps.shape
    if k < 1 or d < 1:
        return f"representatives {reps.shape} need at least one representative of at least one dimension"
    if not isinstance(counts, np.ndarray) or counts.shape != (c,) or counts.dtype.kind not in "iu":
        return f"counts must be {c} integers (one per class of representatives {reps.shape}), got " \
               f"{_describe_array(counts)}"
    if len(labels) != c:
        return f"{len(labels)} labels for {c} classes of representatives"
    problems = (label_problem(label) for label in labels)
    problem = next((p for p in problems if p), None)
    if problem:
        return problem
    duplicates = sorted(label for label, n in Counter(labels).items() if n > 1)
    if duplicates:
        return f"labels {_preview(tuple(duplicates))} appear more than once"
    if c and (counts.min() < 1 or counts.max() > k):
        return f"counts must be between 1 and K = {k}, got {counts.min()}..{counts.max()}"
    if not np.isfinite(reps).all():
        return "representatives hold NaN or infinite values"
    return _fingerprint_problem(fingerprint)


def _fingerprint_problem(fingerprint: str) -> str | None:
    if not isinstance(fingerprint, str):
        return f"the fingerprint must be a string, got {type(fingerprint).__name__}"
    if fingerprint == NO_FINGERPRINT and not FINGERPRINT_REQUIRED:
        return None
    if not re.search(HEX64, fingerprint):
        return f"the fingerprint {fingerprint!r} is not 64 lowercase hexadecimal digits"
    return None


def _check_embeddings(label: str, embeddings: np.ndarray, dim: int) -> None:
    if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 2 or embeddings.shape[1] != dim \
            or len(embeddings) == 0:
        raise UserError(f"cannot enroll {label!r}: expected embeddings [N >= 1, {dim}], got "
                        f"{_describe_array(embeddings)}")
    if not np.isfinite(embeddings).all():
        raise UserError(f"cannot enroll {label!r}: its embeddings hold NaN or infinite values (the model "
                        f"failed on these images); nothing was enrolled, check the images and the model")


def _describe_array(value) -> str:
    return f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__


def _preview(labels: Sequence[str], n: int = 10) -> str:
    if not labels:
        return "none"
    shown = ", ".join(repr(x) for x in labels[:n])
    return shown + (f", ... ({len(labels)} in all)" if len(labels) > n else "")
