"""Few-shot detection from an exported detector artifact: enroll a class from a few boxed
examples, then detect it (and the trained classes) in new images; no retraining, no
re-export: the gallery of representatives is an input of the detection graph.

Backends are plug-ins (:mod:`repmet.runtime.backends`): ``onnxruntime`` (no torch), ``torchscript``,
``aoti`` and ``torch`` (eager, from model.pt); ``auto`` takes the first that the artifact and
this machine allow, in that order (``aoti`` only when named)."""

from __future__ import annotations

import reprlib

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from repmet.errors import UserError
from repmet.imaging import ImageInput, as_image_list, image_name, open_image
from repmet.limits import MAX_BOXES_PER_ENROLL
from repmet.artifact.reader import Artifact
from repmet.runtime.backends import open_detector_backend
from repmet.runtime.detection_preprocess import PreparedImage, prepare_detection_image
from repmet.runtime.graph_errors import graph_errors
from repmet.runtime.few_shot_runtime import RUNTIME_TASKS, FewShotRuntime, check_label

@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the image's own pixels
    label: str
    score: float


@RUNTIME_TASKS.register("detection")
class FewShotDetector(FewShotRuntime):
    """``FewShotDetector.load(DIR)``, then ``enroll(label, [(image, boxes), ...])`` and
    ``detect(images)``. ``detect`` may run in several threads; ``enroll``, ``remove`` and
    ``load_gallery`` swap in a new immutable gallery. A call that fails changes nothing."""

    task = "detection"

    def __init__(self, artifact: Artifact, backend) -> None:
        super().__init__(artifact, backend)
        spec = artifact.metadata["preprocess"]
        self._preprocess = (spec["min_size"], spec["max_size"], spec["mean"], spec["std"])

    @classmethod
    def load(cls, folder: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0) -> "FewShotDetector":
        """``backend``: auto, onnxruntime, torchscript, aoti or torch (eager)."""
        return cls.from_artifact(Artifact.open(folder), backend, device, threads)

    @classmethod
    def from_artifact(cls, artifact: Artifact, backend: str = "auto", device: str = "cpu",
                      threads: int = 0) -> "FewShotDetector":
        cls.require_task(artifact)  # before a backend loads the graphs
        return cls(artifact, open_detector_backend(artifact, backend, device, threads))

    # ------------------------------------------------------------------ gallery (and FewShotRuntime)
    def enroll(self, label: str, examples: Sequence[tuple[ImageInput, Sequence[Sequence[float]]]],
               seed: int = 0) -> None:
        """Add ``label`` (or replace it) from ``(image, boxes)`` pairs, boxes as ``[x1, y1, x2, y2]``
        in the image's pixels; more boxes than K are reduced to K representatives by k-means."""
        check_label(label)
        if not examples:
            raise UserError(f"cannot enroll {label!r} from zero examples; give at least one (image, boxes) pair")
        rows, boxes_so_far = [], 0
        for index, example in enumerate(examples):
            if not isinstance(example, (tuple, list)) or len(example) != 2:
                raise UserError(f"example {index} of {label!r} must be an (image, boxes) pair")
            image, boxes = example
            name = str(image) if isinstance(image, (str, Path)) else f"example {index} of {label!r}"
            prepared = self._prepare(image, name)
            checked = _checked_boxes(boxes, prepared.original_size, name)
            boxes_so_far += len(checked)
            if boxes_so_far > MAX_BOXES_PER_ENROLL:
                raise UserError(f"cannot enroll {label!r} from {boxes_so_far} boxes, more than the limit of "
                                f"{MAX_BOXES_PER_ENROLL} in one enroll; a few boxes per class are what enrolling needs")
            with graph_errors(self.artifact.folder, self.backend.name, f"an image {list(prepared.tensor.shape)} "
                              f"and {len(checked)} boxes"):
                rows.append(self.backend.embed_boxes(prepared, prepared.to_resized(checked)))
        self.galleries.add(label, np.concatenate(rows), seed)

    # ------------------------------------------------------------------ detection
    def detect(self, images: Sequence[ImageInput] | ImageInput, score_threshold: float = 0.2) -> list[list[Detection]]:
        """One list of detections per image, best first, boxes in the image's own pixels (as an
        image viewer shows the image). A score is P(object) x P(class | region) (README, "Few-shot
        object detection"): of the boxes of 5-shot novel classes on fsod-mini scoring 0.2 or more,
        68% were right; at 0.5, 93% (``benchmarks/detection_transfer.py``)."""
        check_score_threshold(score_threshold)
        gallery = self.galleries.current  # one snapshot for the whole call
        if len(gallery) == 0:
            raise UserError("the gallery is empty: enroll classes first, or load a gallery")
        results = []
        for index, image in enumerate(as_image_list(images)):
            prepared = self._prepare(image, image_name(image, index))
            with graph_errors(self.artifact.folder, self.backend.name, f"an image {list(prepared.tensor.shape)} and "
                              f"representatives {list(gallery.representatives.shape)}"):
                boxes, scores, labels, count = self.backend.detect(prepared, gallery.representatives)
            n = int(np.asarray(count).reshape(-1)[0])
            boxes = prepared.to_original(np.asarray(boxes[:n], np.float32))
            results.append([Detection(tuple(float(v) for v in box), gallery.labels[int(label) - 1], float(score))
                            for box, score, label in zip(boxes, scores[:n], labels[:n]) if score >= score_threshold])
        return results

    def _prepare(self, image: ImageInput, name: str) -> PreparedImage:
        rgb = np.asarray(open_image(image, "RGB", name))
        return prepare_detection_image(rgb, *self._preprocess)


def _checked_boxes(boxes, size: tuple[int, int], name: str) -> np.ndarray:
    """``[M, 4]`` float32 boxes inside the image, each with an area, from one box ``[x1, y1, x2, y2]``
    or a list of them ``[M, 4]`` of numbers (not strings, not booleans, not a flat list of 8);
    otherwise a sentence."""
    try:
        given = np.asarray(boxes)
    except (TypeError, ValueError):
        given = np.asarray([], dtype=object)
    if given.size == 0 and given.dtype.kind in "iuf":
        raise UserError(f"{name}: no boxes; give at least one [x1, y1, x2, y2]")
    if given.dtype.kind not in "iuf" or given.ndim not in (1, 2) or given.shape[-1] != 4:
        raise UserError(f"{name}: boxes must be [x1, y1, x2, y2] or [[x1, y1, x2, y2], ...] of numbers, got "
                        f"{reprlib.repr(boxes)}")
    array = given.astype(np.float64).reshape(-1, 4)
    if len(array) == 0:
        raise UserError(f"{name}: no boxes; give at least one [x1, y1, x2, y2]")
    if len(array) > MAX_BOXES_PER_ENROLL:
        raise UserError(f"{name}: {len(array)} boxes, more than the limit of {MAX_BOXES_PER_ENROLL} in one enroll; "
                        f"a few boxes per class are what enrolling needs")
    height, width = size
    for box in array:
        x1, y1, x2, y2 = box
        if not np.isfinite(box).all() or x2 <= x1 or y2 <= y1:
            raise UserError(f"{name}: box {box.tolist()} is empty; boxes are [x1, y1, x2, y2] with x1 < x2 and y1 < y2")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise UserError(f"{name}: box {box.tolist()} lies outside the {width}x{height} image")
    return array.astype(np.float32)


def check_score_threshold(value) -> None:
    """A probability from 0 to 1 (NaN would keep or drop everything, depending on the code path)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(value) <= 1.0:
        raise UserError(f"score_threshold must be a number from 0 to 1, got {value!r:.40}")
