"""Few-shot classification from an exported artifact: enroll classes from a few images,
classify, no retraining and no re-export (the representatives are an input of the head)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from repmet.errors import UserError
from repmet.imaging import ImageInput, as_image_list, image_name
from repmet.artifact.reader import Artifact
from repmet.runtime.backends import Backend, create_backend
from repmet.runtime.gallery_index import DEFAULT_INDEX, GALLERY_INDEXES, GalleryIndex, HeadSpec
from repmet.runtime.graph_errors import graph_errors
from repmet.runtime.few_shot_runtime import RUNTIME_TASKS, FewShotRuntime, check_label
from repmet.runtime.preprocess import preprocess_batch

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Prediction:
    """The ``top_k`` labels of one image, most probable first, with their class posteriors."""

    labels: tuple[str, ...]
    posteriors: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.labels[0]

    @property
    def posterior(self) -> float:
        return self.posteriors[0]


@RUNTIME_TASKS.register("classification")
class FewShotClassifier(FewShotRuntime):
    """``FewShotClassifier.load(DIR)``, then ``enroll(label, images)`` and ``classify(images)``.

    Images are paths, PIL images or uint8 arrays, prepared exactly as the training evaluation
    prepared them. ``classify`` may be called from several threads; ``enroll``, ``remove`` and
    ``load_gallery`` swap in a new immutable gallery, so a concurrent ``classify`` sees the
    gallery before or after the change, never half of it. A call that fails changes nothing.
    """

    task = "classification"

    def __init__(self, artifact: Artifact, backend: Backend, batch_size: int = DEFAULT_BATCH,
                 index: str = DEFAULT_INDEX) -> None:
        index_type = GALLERY_INDEXES.get(index, "index")
        head = HeadSpec(self._head, artifact.metadata["head"]["distance"], float(artifact.metadata["head"]["sigma"]))
        # an index on this classifier's head (read from beside the gallery file it was loaded from, if saved there)
        self.build_index = lambda gallery, saved=None: index_type.load_or_build(gallery, head, saved)
        super().__init__(artifact, backend, self.build_index)
        self.batch_size = batch_size
        self.preprocess_spec = artifact.preprocess

    @classmethod
    def load(cls, folder: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0,
             batch_size: int = DEFAULT_BATCH, index: str = DEFAULT_INDEX) -> "FewShotClassifier":
        """``backend``: auto, torch, torchscript, onnxruntime, aoti or tensorrt; ``threads``: CPU
        threads for ONNX Runtime (0: its default); ``index``: how the gallery is searched
        (``repmet.runtime.gallery_index``: exact by default)."""
        return cls.from_artifact(Artifact.open(folder), backend, device, threads, batch_size, index)

    @classmethod
    def from_artifact(cls, artifact: Artifact, backend: str = "auto", device: str = "cpu", threads: int = 0,
                      batch_size: int = DEFAULT_BATCH, index: str = DEFAULT_INDEX) -> "FewShotClassifier":
        cls.require_task(artifact)  # before a backend loads the graphs,
        GALLERY_INDEXES.get(index, "index")  # and so is an unknown index
        return cls(artifact, create_backend(artifact, backend, device, threads), batch_size, index)

    # ------------------------------------------------------------------ gallery (and FewShotRuntime)
    def enroll(self, label: str, images: Sequence[ImageInput] | ImageInput, seed: int = 0) -> None:
        """Add ``label`` (or replace it) from its images; more than K shots are reduced to K
        representatives by k-means."""
        check_label(label)
        images = as_image_list(images)
        if not images:
            raise UserError(f"cannot enroll {label!r} from zero images; give at least one")
        self.galleries.add(label, self.embed(images), seed)

    # ------------------------------------------------------------------ inference
    def embed(self, images: Sequence[ImageInput] | ImageInput) -> np.ndarray:
        """``[N, D]`` embeddings of the images, in order."""
        images = as_image_list(images)
        spec, chunks = self.preprocess_spec, []
        for start in range(0, len(images), self.batch_size):
            part = images[start:start + self.batch_size]
            names = [image_name(image, start + i) for i, image in enumerate(part)]
            batch = preprocess_batch(part, spec, names)
            with graph_errors(self.artifact.folder, self.backend.name, f"images {list(batch.shape)}"):
                chunks.append(self.backend.embed(batch))
        if not chunks:
            return np.zeros((0, self.embedding_dim), np.float32)
        return np.concatenate(chunks)

    def classify(self, images: Sequence[ImageInput] | ImageInput, top_k: int = 1) -> list[Prediction]:
        """One :class:`Prediction` per image."""
        gallery, index = self.galleries.snapshot()  # one gallery and its index for the whole call
        if len(gallery) == 0:
            raise UserError("the gallery is empty: enroll classes first (enroll(label, images)) or load a gallery")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise UserError(f"top_k must be a whole number of at least 1, got {top_k!r:.40}")
        return self.predictions(index, self.embed(images), top_k)

    @staticmethod
    def predictions(index: GalleryIndex, embeddings: np.ndarray, top_k: int) -> list[Prediction]:
        """The ``top_k`` classes of each embedding, found by ``index``."""
        found = index.nearest(embeddings, top_k)
        labels = index.gallery.labels
        return [Prediction(tuple(labels[j] for j in row if j >= 0), tuple(float(p) for j, p in zip(row, scores) if j >= 0))
                for row, scores in zip(found.classes, found.posteriors)]

    def posteriors(self, embeddings: np.ndarray) -> np.ndarray:
        """Class posteriors ``[N, C]`` of ``embeddings`` over the current gallery, by its index."""
        return self.galleries.snapshot()[1].posteriors(embeddings)

    def _head(self, embeddings: np.ndarray, representatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The backend's distance head, its failures as sentences."""
        with graph_errors(self.artifact.folder, self.backend.name,
                          f"embeddings {list(embeddings.shape)} and representatives {list(representatives.shape)}"):
            return self.backend.head(embeddings, representatives)
