"""Every export is checked: the exported graphs, run through the runtime's own backends on
real images, against the PyTorch model on the same inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from repmet.errors import UserError
from repmet.export.exportable import ExportableModel
from repmet.export.formats.plugin import FP32_TOLERANCE
from repmet.runtime.backends import Backend

SAMPLE_IMAGES = 16


@dataclass(frozen=True)
class Verification:
    backend: str
    samples: int
    max_abs_embedding: float
    max_abs_posterior: float
    top1_agreement: float
    tolerance: float | None  # None: reported only (fp16)

    @property
    def passed(self) -> bool:
        return self.tolerance is None or (self.max_abs_embedding <= self.tolerance
                                          and self.max_abs_posterior <= self.tolerance)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def sample_images(model: ExportableModel, data_root: str | None, samples_dir: str | None,
                  count: int = SAMPLE_IMAGES) -> tuple[np.ndarray, str]:
    """``count`` real images prepared by the *training* evaluation pipeline, and where they came from.
    ``samples_dir``: a folder of images to use instead (prepared by the runtime's preprocessing)."""
    if samples_dir:
        return _folder_samples(model, Path(samples_dir), count)
    d = model.config.data
    try:
        return model.trained.method.verification_images(model.config, data_root or d.root, count)
    except UserError as exc:
        raise UserError(f"verifying the export needs real images, and the {d.dataset} {d.test_split} split is not "
                        f"readable ({exc}); pass --data-root DIR or --samples FOLDER_OF_IMAGES") from None


def _folder_samples(model: ExportableModel, folder: Path, count: int) -> tuple[np.ndarray, str]:
    from repmet.imaging import images_under
    from repmet.runtime.preprocess import preprocess_batch

    paths = images_under(folder)[:count]
    if len(paths) < 2:
        raise UserError(f"--samples {folder}: need a folder with at least 2 images, found {len(paths)}")
    return preprocess_batch(paths, model.preprocess), f"{len(paths)} images of {folder}"


@torch.no_grad()
def verify_backend(backend: Backend, model: ExportableModel, images: np.ndarray,
                   tolerance: float | None = FP32_TOLERANCE) -> Verification:
    reference = model.embedding.eval()(torch.from_numpy(images))
    exported = backend.embed(images)
    single = backend.embed(images[:1])  # batch 1: the batch dimension really is dynamic
    embedding_diff = max(float(np.abs(exported - reference.numpy()).max()),
                         float(np.abs(single - reference[:1].numpy()).max()))
    if len(model.gallery):
        reps, queries = torch.from_numpy(model.gallery.representatives), slice(None)
    else:  # no trained gallery (Prototypical Networks): half the samples enroll, the other half query
        half = len(images) // 2
        reps, queries = reference[:half, None, :], slice(half, None)
    _, ref_posteriors = model.head(reference[queries], reps)
    _, posteriors = backend.head(exported[queries], reps.numpy())
    ref_posteriors = ref_posteriors.numpy()
    return Verification(backend.name, len(images), embedding_diff,
                        float(np.abs(posteriors - ref_posteriors).max()),
                        float((posteriors.argmax(1) == ref_posteriors.argmax(1)).mean()), tolerance)


def require_passed(result: Verification, fmt: str) -> None:
    if not result.passed:
        raise UserError(f"the {fmt} export disagrees with the PyTorch model: max abs difference "
                        f"{result.max_abs_embedding:.3g} on embeddings and {result.max_abs_posterior:.3g} on "
                        f"posteriors (allowed {result.tolerance:g}); the artifact was not written. Report this "
                        f"with the checkpoint, or try another --opset")
