"""What FewShotClassifier and FewShotDetector share: an artifact, the backend that runs it, and
the gallery they serve (a :class:`~repmet.runtime.gallery_store.GalleryStore`); and the table of
runtimes by task, so ``open_runtime(DIR)`` serves whichever task an artifact was exported for and
nothing in the runtime branches on a task name."""

from __future__ import annotations

import importlib
from pathlib import Path

from repmet.artifact.gallery_file import Gallery
from repmet.artifact.labels import label_problem
from repmet.artifact.reader import Artifact
from repmet.errors import UserError
from repmet.registry import Registry
from repmet.runtime.gallery_store import GalleryStore


def _load_builtins() -> None:
    for module in ("classifier", "detector"):
        importlib.import_module(f"repmet.runtime.{module}")


# an artifact's metadata "task" -> the runtime class that serves it
RUNTIME_TASKS: Registry[type["FewShotRuntime"]] = Registry("task", _load_builtins)


def open_runtime(folder: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0) -> "FewShotRuntime":
    """The runtime for whatever task the artifact in ``folder`` holds (a FewShotClassifier or a
    FewShotDetector), on ``backend``."""
    artifact = Artifact.open(folder)
    runtime = RUNTIME_TASKS.get(artifact.task, f"{artifact.folder}: metadata.json task")
    return runtime.from_artifact(artifact, backend, device, threads)


class FewShotRuntime:
    """The base of both runtimes: ``enroll`` and the queries are theirs, the gallery's life is
    here. A subclass names its ``task`` and registers itself in RUNTIME_TASKS."""

    task = ""

    def __init__(self, artifact: Artifact, backend, build_index=None) -> None:
        self.require_task(artifact)
        self.artifact, self.backend = artifact, backend
        self.galleries = GalleryStore(artifact, build_index)

    @classmethod
    def load(cls, folder: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0):
        """The artifact in ``folder`` on ``backend`` (``auto``: the fastest one that runs it here)."""
        return cls.from_artifact(Artifact.open(folder), backend, device, threads)

    @classmethod
    def from_artifact(cls, artifact: Artifact, backend: str = "auto", device: str = "cpu", threads: int = 0):
        raise NotImplementedError

    @classmethod
    def require_task(cls, artifact: Artifact) -> None:
        """Before a backend loads any graph: a sentence naming the runtime that serves the artifact."""
        if artifact.task != cls.task:
            other = RUNTIME_TASKS.get(artifact.task, f"{artifact.folder}: metadata.json task").__name__
            raise UserError(f"{artifact.folder} is a {artifact.task} artifact; load it with {other}, "
                            f"not {cls.__name__}")

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
        return self.galleries.save(path)

    def load_gallery(self, path: str | Path) -> None:
        self.galleries.load(path)


def check_label(label) -> None:
    problem = label_problem(label)
    if problem:
        raise UserError(problem)
