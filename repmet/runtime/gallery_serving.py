"""What FewShotClassifier and FewShotDetector share: an artifact, the backend that runs it, and
the gallery they serve (a :class:`~repmet.runtime.gallery_store.GalleryStore`)."""

from __future__ import annotations

from pathlib import Path

from repmet.artifact.gallery_file import Gallery
from repmet.artifact.labels import label_problem
from repmet.artifact.reader import Artifact
from repmet.errors import UserError
from repmet.runtime.gallery_store import GalleryStore


class GalleryServing:
    """The base of both runtimes: ``enroll`` and the queries are theirs, the gallery's life is here."""

    def __init__(self, artifact: Artifact, backend) -> None:
        self.artifact, self.backend = artifact, backend
        self.galleries = GalleryStore(artifact)

    @property
    def labels(self) -> list[str]:
        return list(self.galleries.current.labels)

    @property
    def gallery(self) -> Gallery:
        return self.galleries.current

    @property
    def embedding_dim(self) -> int:
        return self.galleries.embedding_dim

    @property
    def reps_per_class(self) -> int:
        return self.galleries.reps_per_class

    @property
    def fingerprint(self) -> str:
        return self.galleries.fingerprint

    def remove(self, label: str) -> None:
        self.galleries.remove(label)

    def clear(self) -> None:
        """Remove every class (the trained ones included)."""
        self.galleries.clear()

    def save_gallery(self, path: str | Path) -> Path:
        return self.galleries.current.save(path)

    def load_gallery(self, path: str | Path) -> None:
        self.galleries.load(path)


def check_label(label) -> None:
    problem = label_problem(label)
    if problem:
        raise UserError(problem)
