"""Few-shot detection from an exported detector artifact: enroll a class from a few boxed
examples, then detect it (and the trained classes) in new images; no retraining, no
re-export: the gallery of representatives is an input of the detection graph.

Backends: ``onnxruntime`` (the artifact's detection.onnx and box_embedding.onnx; no torch) and
``torch`` (the same fixed-shape graphs rebuilt eagerly from model.pt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from repmet.errors import UserError
from repmet.imaging import ImageInput, as_image_list, image_name, open_image
from repmet.runtime.artifact import Artifact
from repmet.runtime.detection_preprocess import PreparedImage, prepare_detection_image
from repmet.runtime.gallery_serving import GalleryServing, check_label

DETECTOR_BACKENDS = ("auto", "onnxruntime", "torch")


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the image's own pixels
    label: str
    score: float


class _OnnxRuntimeDetector:
    name = "onnxruntime"

    def __init__(self, artifact: Artifact, device: str, threads: int) -> None:
        from repmet.runtime.backends.onnxruntime_backend import onnxruntime_sessions

        graphs = artifact.metadata["graphs"]["onnx"]
        self._detect, self._embed = onnxruntime_sessions(
            [artifact.file(graphs["detection"]), artifact.file(graphs["box_embedding"])], device, threads)

    def detect(self, image: PreparedImage, representatives: np.ndarray):
        return self._detect.run(None, {"image": image.tensor, "image_size": image.image_size,
                                       "representatives": representatives})

    def embed_boxes(self, image: PreparedImage, boxes: np.ndarray) -> np.ndarray:
        return self._embed.run(None, {"image": image.tensor, "boxes": boxes})[0]


class _TorchDetector:
    name = "torch"

    def __init__(self, artifact: Artifact, device: str) -> None:
        import torch

        from repmet.devices import resolve_device
        from repmet.export.detector_graph import BoxEmbeddingGraph, DetectionGraph
        from repmet.methods import open_checkpoint

        self._torch, self._device = torch, resolve_device(device, option="device")
        model = open_checkpoint(artifact.file(artifact.metadata["model"])).model.eval()
        canvas = artifact.metadata["detection"]["canvas"]
        self._detect = DetectionGraph(model, canvas).eval().to(self._device)
        self._embed = BoxEmbeddingGraph(model).eval().to(self._device)

    def _tensor(self, array: np.ndarray):
        return self._torch.from_numpy(np.ascontiguousarray(array)).to(self._device)

    def detect(self, image: PreparedImage, representatives: np.ndarray):
        with self._torch.no_grad():
            outputs = self._detect(self._tensor(image.tensor), self._tensor(image.image_size),
                                   self._tensor(representatives))
        return [o.cpu().numpy() for o in outputs]

    def embed_boxes(self, image: PreparedImage, boxes: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            return self._embed(self._tensor(image.tensor), self._tensor(boxes)).cpu().numpy()


class FewShotDetector(GalleryServing):
    """``FewShotDetector.load(DIR)``, then ``enroll(label, [(image, boxes), ...])`` and
    ``detect(images)``. ``detect`` may run in several threads; ``enroll``, ``remove`` and
    ``load_gallery`` swap in a new immutable gallery. A call that fails changes nothing."""

    def __init__(self, artifact: Artifact, backend) -> None:
        self.artifact, self.backend = artifact, backend
        spec = artifact.metadata["preprocess"]
        self._preprocess = (spec["min_size"], spec["max_size"], spec["mean"], spec["std"])
        self._serve_gallery(artifact)

    @classmethod
    def load(cls, folder: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0) -> "FewShotDetector":
        """``backend``: auto (ONNX Runtime), onnxruntime or torch."""
        artifact = Artifact.open(folder)
        if artifact.task != "detection":
            raise UserError(f"{artifact.folder} is a {artifact.task} artifact; load it with FewShotClassifier, "
                            f"not FewShotDetector")
        if backend not in DETECTOR_BACKENDS:
            raise UserError(f"backend {backend!r} is not one a detector runs on; choose from "
                            f"{', '.join(DETECTOR_BACKENDS)}")
        runner = _TorchDetector(artifact, device) if backend == "torch" else _OnnxRuntimeDetector(artifact, device,
                                                                                                   threads)
        return cls(artifact, runner)

    # ------------------------------------------------------------------ gallery (and GalleryServing)
    def enroll(self, label: str, examples: Sequence[tuple[ImageInput, Sequence[Sequence[float]]]],
               seed: int = 0) -> None:
        """Add ``label`` (or replace it) from ``(image, boxes)`` pairs, boxes as ``[x1, y1, x2, y2]``
        in the image's pixels; more boxes than K are reduced to K representatives by k-means."""
        check_label(label)
        if not examples:
            raise UserError(f"cannot enroll {label!r} from zero examples; give at least one (image, boxes) pair")
        rows = []
        for index, example in enumerate(examples):
            if not isinstance(example, (tuple, list)) or len(example) != 2:
                raise UserError(f"example {index} of {label!r} must be an (image, boxes) pair")
            image, boxes = example
            name = str(image) if isinstance(image, (str, Path)) else f"example {index} of {label!r}"
            prepared = self._prepare(image, name)
            checked = _checked_boxes(boxes, prepared.original_size, name)
            rows.append(self.backend.embed_boxes(prepared, prepared.to_resized(checked)))
        self._add_class(label, np.concatenate(rows), seed)

    # ------------------------------------------------------------------ detection
    def detect(self, images: Sequence[ImageInput] | ImageInput, score_threshold: float = 0.5) -> list[list[Detection]]:
        """One list of detections per image, best first, boxes in the image's own pixels."""
        gallery = self._gallery  # one snapshot for the whole call
        if len(gallery) == 0:
            raise UserError("the gallery is empty: enroll classes first, or load a gallery")
        results = []
        for index, image in enumerate(as_image_list(images)):
            prepared = self._prepare(image, image_name(image, index))
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
    """``[M, 4]`` float32 boxes inside the image, each with an area; otherwise a sentence."""
    try:
        array = np.asarray(boxes, np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        raise UserError(f"{name}: boxes must be [[x1, y1, x2, y2], ...], got {boxes!r}") from None
    if len(array) == 0:
        raise UserError(f"{name}: no boxes; give at least one [x1, y1, x2, y2]")
    height, width = size
    for box in array:
        x1, y1, x2, y2 = box
        if not np.isfinite(box).all() or x2 <= x1 or y2 <= y1:
            raise UserError(f"{name}: box {box.tolist()} is empty; boxes are [x1, y1, x2, y2] with x1 < x2 and y1 < y2")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise UserError(f"{name}: box {box.tolist()} lies outside the {width}x{height} image")
    return array.astype(np.float32)
