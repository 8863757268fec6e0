"""Gallery indexes: how a classifier finds the classes nearest to a query among the gallery's
representatives. Each index is a plug-in folder here (its ``__init__`` registers a
:class:`GalleryIndex` subclass in ``GALLERY_INDEXES``) or a third-party package's entry point in
the ``repmet.gallery_indexes`` group. ``exact`` runs the artifact's own verified distance head over
every representative; an approximate index (``hnsw`` on faiss, for galleries of a million
representatives) returns the same :class:`NearestClasses` from a shortlist; ``auto`` (the default)
chooses between the two by the gallery's size.

The detector has no index: its distance head is inside the exported detection graph, because a
region's score needs the distances to every enrolled class *and* background (a softmax over
them) and per-class NMS needs every class's score; see docs/architecture.md for what moving it
out would cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from repmet.artifact.gallery_file import Gallery
from repmet.registry import Registry, subpackage_loader

DEFAULT_INDEX = "auto"  # exact search for small galleries, hnsw for large ones (auto/__init__.py)

# (embeddings [N, D], representatives [C, K, D]) -> (distances [N, C, K], posteriors [N, C])
HeadFunction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class HeadSpec:
    """What an index needs to know of the artifact's head: its function on this backend (exact
    search), and its distance and temperature (an index computing posteriors itself)."""

    run: HeadFunction
    distance: str
    sigma: float


@dataclass(frozen=True)
class NearestClasses:
    """Per query, the gallery's classes most probable first: ``classes [N, M]`` (indices into
    ``gallery.labels``; -1 where an approximate index found fewer) and their ``posteriors [N, M]``;
    M = min(top_k, C)."""

    classes: np.ndarray
    posteriors: np.ndarray


class GalleryIndex:
    """Built once per gallery snapshot (the gallery is immutable; enroll and remove make a new
    one, and a new index with it). Must be safe to query from several threads at once."""

    name: str = ""

    def __init__(self, gallery: Gallery, head: HeadSpec) -> None:
        self.gallery, self.head = gallery, head

    def posteriors(self, embeddings: np.ndarray) -> np.ndarray:
        """``[N, C]`` class posteriors over the whole gallery (zero where an approximate index did
        not look)."""
        raise NotImplementedError

    @classmethod
    def load_or_build(cls, gallery: Gallery, head: HeadSpec, saved=None) -> "GalleryIndex":
        """The index of ``gallery``, just loaded from the file ``saved``: an index that keeps a file
        beside the gallery's (``save_alongside``) reads it instead of building; the default builds."""
        return cls(gallery, head)

    def save_alongside(self, gallery_path) -> None:
        """Called after the gallery was saved to ``gallery_path``: an index costly to build writes
        itself beside it (atomically); the default writes nothing."""

    def updated(self, gallery: Gallery, changed: set[str]) -> "GalleryIndex":
        """The index of ``gallery``, which differs from this one's in the classes ``changed``
        (enrolled, replaced or removed). This index keeps serving its own gallery unchanged. The
        default builds anew; an index that is costly to build updates what changed."""
        return type(self)(gallery, self.head)

    def nearest(self, embeddings: np.ndarray, top_k: int) -> NearestClasses:
        """The ``top_k`` most probable classes of each query. The default ranks :meth:`posteriors`
        with a partial sort, so the cost grows with C only linearly."""
        posteriors = self.posteriors(embeddings)
        k = min(top_k, posteriors.shape[1])
        candidates = np.argpartition(-posteriors, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(posteriors, candidates, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")
        return NearestClasses(np.take_along_axis(candidates, order, axis=1), np.take_along_axis(scores, order, axis=1))


GALLERY_INDEXES: Registry[type[GalleryIndex]] = Registry(
    "gallery index", subpackage_loader("repmet.runtime.gallery_index", "repmet.gallery_indexes"))


def index_names() -> list[str]:
    return GALLERY_INDEXES.names()
