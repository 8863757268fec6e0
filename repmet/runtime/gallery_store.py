"""The gallery a runtime serves: immutable, swapped in whole under a lock, so a concurrent
classify or detect sees it before or after a change, never half of it; a gallery made with
another model is refused. This is the seam a gallery index (an approximate nearest-neighbour
search over the representatives) plugs into: every change goes through it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from repmet.artifact.gallery_file import Gallery
from repmet.artifact.reader import Artifact
from repmet.errors import UserError


class GalleryStore:
    """``GalleryStore(artifact)``: starts from the artifact's trained gallery (if any);
    ``current`` is the gallery to use for one whole call."""

    def __init__(self, artifact: Artifact) -> None:
        meta = artifact.metadata
        self.folder = artifact.folder
        self.reps_per_class = int(meta["head"]["reps_per_class"])
        self.embedding_dim = int(meta["embedding"]["dim"])
        self.fingerprint = artifact.fingerprint
        self._write_lock = threading.Lock()
        self._current = self.empty()
        if meta.get("gallery"):
            trained = artifact.file(meta["gallery"])
            self._current = self.checked(Gallery.load(trained), trained)

    @property
    def current(self) -> Gallery:
        return self._current

    def empty(self) -> Gallery:
        return Gallery.empty(self.reps_per_class, self.embedding_dim, self.fingerprint)

    def add(self, label: str, embeddings: np.ndarray, seed: int) -> None:
        with self._write_lock:
            self._current = self._current.with_class(label, embeddings, seed)

    def remove(self, label: str) -> None:
        with self._write_lock:
            self._current = self._current.without_class(label)

    def clear(self) -> None:
        with self._write_lock:
            self._current = self.empty()

    def load(self, path: str | Path) -> None:
        gallery = self.checked(Gallery.load(path, (self.reps_per_class, self.embedding_dim)), path)
        with self._write_lock:
            self._current = gallery

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
