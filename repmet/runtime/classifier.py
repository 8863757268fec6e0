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
from repmet.artifact.gallery_file import Gallery
from repmet.runtime.graph_errors import graph_errors
from repmet.runtime.gallery_serving import GalleryServing, check_label
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


class FewShotClassifier(GalleryServing):
    """``FewShotClassifier.load(DIR)``, then ``enroll(label, images)`` and ``classify(images)``.

    Images are paths, PIL images or uint8 arrays, prepared exactly as the training evaluation
    prepared them. ``classify`` may be called from several threads; ``enroll``, ``remove`` and
    ``load_gallery`` swap in a new immutable gallery, so a concurrent ``classify`` sees the
    gallery before or after the change, never half of it. A call that fails changes nothing.
    """

    def __init__(self, artifact: Artifact, backend: Backend, batch_size: int = DEFAULT_BATCH) -> None:
        _require_classification(artifact)
        super().__init__(artifact, backend)
        self.batch_size = batch_size
        self.preprocess_spec = artifact.preprocess

    @classmethod
    def load(cls, folder: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0,
             batch_size: int = DEFAULT_BATCH) -> "FewShotClassifier":
        """``backend``: auto, torch, torchscript, onnxruntime or tensorrt; ``threads``: CPU threads
        for ONNX Runtime (0: its default)."""
        artifact = Artifact.open(folder)
        _require_classification(artifact)  # before a backend loads the graphs
        return cls(artifact, create_backend(artifact, backend, device, threads), batch_size)

    # ------------------------------------------------------------------ gallery (and GalleryServing)
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
        gallery = self.galleries.current  # one snapshot for the whole call
        if len(gallery) == 0:
            raise UserError("the gallery is empty: enroll classes first (enroll(label, images)) or load a gallery")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise UserError(f"top_k must be a whole number of at least 1, got {top_k!r:.40}")
        return self.rank(self.posteriors(self.embed(images), gallery), gallery, top_k)

    @staticmethod
    def rank(posteriors: np.ndarray, gallery: Gallery, top_k: int) -> list[Prediction]:
        """The ``top_k`` classes of each row of ``posteriors [N, C]``: a partial sort, so the
        cost grows with C only linearly."""
        k = min(top_k, posteriors.shape[1])
        candidates = np.argpartition(-posteriors, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(posteriors, candidates, axis=1)
        order = np.take_along_axis(candidates, np.argsort(-scores, axis=1, kind="stable"), axis=1)
        return [Prediction(tuple(gallery.labels[j] for j in row), tuple(float(p[j]) for j in row))
                for row, p in zip(order, posteriors)]

    def posteriors(self, embeddings: np.ndarray, gallery: Gallery | None = None) -> np.ndarray:
        """Class posteriors ``[N, C]`` of ``embeddings`` over ``gallery`` (default: the current one)."""
        gallery = self.galleries.current if gallery is None else gallery
        with graph_errors(self.artifact.folder, self.backend.name,
                          f"embeddings {list(embeddings.shape)} and representatives {list(gallery.representatives.shape)}"):
            return self.backend.head(embeddings, gallery.representatives)[1]


def _require_classification(artifact: Artifact) -> None:
    if artifact.task != "classification":
        raise UserError(f"{artifact.folder} is a {artifact.task} artifact; load it with FewShotDetector, "
                        f"not FewShotClassifier")
