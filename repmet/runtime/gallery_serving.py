"""What FewShotClassifier and FewShotDetector share: the gallery they serve. It is immutable
and swapped in whole under a lock, so a concurrent classify or detect sees it before or after a
change, never half of it; a gallery made with another model is refused."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from repmet.errors import UserError
from repmet.runtime.labels import label_problem
from repmet.runtime.artifact import Artifact
from repmet.runtime.gallery import Gallery


class GalleryServing:
    artifact: Artifact
    reps_per_class: int
    embedding_dim: int
    fingerprint: str

    def _serve_gallery(self, artifact: Artifact) -> None:
        """Set up from the artifact's metadata, starting from its trained gallery (if any)."""
        meta = artifact.metadata
        self.reps_per_class = int(meta["head"]["reps_per_class"])
        self.embedding_dim = int(meta["embedding"]["dim"])
        self.fingerprint = artifact.fingerprint
        self._write_lock = threading.Lock()
        self._gallery = self._empty_gallery()
        if meta.get("gallery"):
            trained = artifact.file(meta["gallery"])
            self._gallery = self._checked(Gallery.load(trained), trained)

    @property
    def labels(self) -> list[str]:
        return list(self._gallery.labels)

    @property
    def gallery(self) -> Gallery:
        return self._gallery

    def remove(self, label: str) -> None:
        with self._write_lock:
            self._gallery = self._gallery.without_class(label)

    def clear(self) -> None:
        """Remove every class (the trained ones included)."""
        with self._write_lock:
            self._gallery = self._empty_gallery()

    def save_gallery(self, path: str | Path) -> Path:
        return self._gallery.save(path)

    def load_gallery(self, path: str | Path) -> None:
        gallery = self._checked(Gallery.load(path, (self.reps_per_class, self.embedding_dim)), path)
        with self._write_lock:
            self._gallery = gallery

    def _add_class(self, label: str, embeddings: np.ndarray, seed: int) -> None:
        with self._write_lock:
            self._gallery = self._gallery.with_class(label, embeddings, seed)

    def _empty_gallery(self) -> Gallery:
        return Gallery.empty(self.reps_per_class, self.embedding_dim, self.fingerprint)

    def _checked(self, gallery: Gallery, where: str | Path) -> Gallery:
        """``gallery``, if it was made with this artifact's embedding."""
        # Compared first: another model of the same size fits every shape and answers nonsense.
        if self.fingerprint and gallery.fingerprint != self.fingerprint:
            raise UserError(f"gallery {where} was made with another model: its embedding fingerprint is "
                            f"{gallery.fingerprint or 'missing'}, the embedding of {self.artifact.folder} has "
                            f"{self.fingerprint}; enroll the classes again with this artifact and save a new "
                            f"gallery")
        if gallery.embedding_dim != self.embedding_dim or gallery.reps_per_class != self.reps_per_class:
            raise UserError(f"gallery {where} holds {gallery.reps_per_class} x {gallery.embedding_dim}-d "
                            f"representatives per class; this model needs {self.reps_per_class} x "
                            f"{self.embedding_dim}-d (was it saved from another model?)")
        return gallery


def check_label(label) -> None:
    problem = label_problem(label)
    if problem:
        raise UserError(problem)
