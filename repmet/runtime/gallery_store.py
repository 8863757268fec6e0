"""The gallery a runtime serves: immutable, swapped in whole under a lock, so a concurrent
classify or detect sees it before or after a change, never half of it; a gallery made with
another model is refused. Each gallery is paired with the index built on it
(:mod:`repmet.runtime.gallery_index`), and the pair is swapped as one, so a query never searches
an index of another gallery."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np

from repmet.artifact.gallery_file import Gallery
from repmet.artifact.reader import Artifact
from repmet.errors import UserError


class GalleryStore:
    """``GalleryStore(artifact, build_index)``: starts from the artifact's trained gallery (if
    any); ``current`` is the gallery to use for one whole call, ``snapshot()`` the gallery and
    its index (``build_index(gallery, saved_file_or_None)``; None without a builder)."""

    def __init__(self, artifact: Artifact, build_index: Callable[..., object] | None = None) -> None:
        meta = artifact.metadata
        self.folder = artifact.folder
        self.reps_per_class = int(meta["head"]["reps_per_class"])
        self.embedding_dim = int(meta["embedding"]["dim"])
        self.fingerprint = artifact.fingerprint
        self._write_lock = threading.Lock()
        self._build_index = build_index
        self._set(self.empty())
        if meta.get("gallery"):
            trained = artifact.file(meta["gallery"])
            self._set(self.checked(Gallery.load(trained), trained))

    @property
    def current(self) -> Gallery:
        return self._state[0]

    def snapshot(self) -> tuple[Gallery, object]:
        """The current gallery and its index, consistent with each other."""
        return self._state

    def _set(self, gallery: Gallery, changed: str | None = None, saved: str | Path | None = None) -> None:
        """Serve ``gallery``; ``changed``: the one label enrolled or removed since the gallery served
        now, so the index can be updated (``GalleryIndex.updated``) instead of rebuilt; ``saved``:
        the file the gallery was just loaded from (an index saved beside it is read, not built)."""
        # built before the swap: the index of the old gallery serves until the new one is ready
        previous = getattr(self, "_state", (None, None))[1]
        if not self._build_index:
            index = None
        elif previous is not None and changed is not None:
            index = previous.updated(gallery, {changed})
        else:
            index = self._build_index(gallery, saved)
        self._state = (gallery, index)

    def save(self, path: str | Path) -> Path:
        """The gallery served now written to ``path`` (atomically), and its index beside it when the
        index keeps a file (both from one snapshot)."""
        gallery, index = self.snapshot()
        written = gallery.save(path)
        if index is not None:
            index.save_alongside(written)
        return written

    def empty(self) -> Gallery:
        return Gallery.empty(self.reps_per_class, self.embedding_dim, self.fingerprint)

    def add(self, label: str, embeddings: np.ndarray, seed: int) -> None:
        with self._write_lock:
            self._set(self.current.with_class(label, embeddings, seed), changed=label)

    def remove(self, label: str) -> None:
        with self._write_lock:
            self._set(self.current.without_class(label), changed=label)

    def clear(self) -> None:
        with self._write_lock:
            self._set(self.empty())

    def replace(self, gallery: Gallery) -> None:
        """Serve ``gallery`` (one this store gave out, e.g. to undo a change that could not be saved)."""
        with self._write_lock:
            self._set(self.checked(gallery, "in memory"))

    def load(self, path: str | Path) -> None:
        gallery = self.checked(Gallery.load(path, (self.reps_per_class, self.embedding_dim)), path)
        with self._write_lock:
            self._set(gallery, saved=path)

    def checked(self, gallery: Gallery, where: str | Path) -> Gallery:
        """``gallery``, if it was made with this artifact's embedding."""
        # Compared first: another model of the same size fits every shape and answers nonsense.
        if self.fingerprint and gallery.fingerprint != self.fingerprint:
            raise UserError(f"gallery {where} was made with another model: its embedding fingerprint is "
                            f"{gallery.fingerprint or 'missing'}, the embedding of {self.folder} has "
                            f"{self.fingerprint}; enroll the classes again with this artifact and save a new "
                            f"gallery")
        if gallery.embedding_dim != self.embedding_dim or gallery.reps_per_class != self.reps_per_class:
            raise UserError(f"gallery {where} holds {gallery.reps_per_class} x {gallery.embedding_dim}-d "
                            f"representatives per class; this model needs {self.reps_per_class} x "
                            f"{self.embedding_dim}-d (was it saved from another model?)")
        return gallery
