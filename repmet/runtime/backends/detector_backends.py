"""Where a detector's two graphs run: ``detect(image, representatives)`` -> ``(boxes, scores,
labels, count)`` and ``embed_boxes(image, boxes)`` -> ``[M, D]``, both on a
:class:`~repmet.runtime.detection_preprocess.PreparedImage` (canvas-sized, normalised).

- ``onnxruntime``: detection.onnx and box_embedding.onnx; no torch.
- ``torchscript``: detection.ts and box_embedding.ts, traced graphs whose RoI pooling and NMS
  are torchvision's ops (importing torchvision registers them).
- ``aoti``: detection.pt2 and box_embedding.pt2, AOTInductor packages (CPU), with the same
  torchvision operators.
- ``torch``: the same fixed-shape graphs rebuilt eagerly from model.pt.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


class OnnxRuntimeDetectorBackend:
    name = "onnxruntime"

    def __init__(self, detection_path: Path, embedding_path: Path, device: str = "cpu", threads: int = 0) -> None:
        from repmet.runtime.backends.onnxruntime_backend import onnxruntime_sessions

        self.device = device
        self._detect, self._embed = onnxruntime_sessions([detection_path, embedding_path], device, threads)

    def detect(self, image, representatives: np.ndarray):
        return self._detect.run(None, {"image": image.tensor, "image_size": image.image_size,
                                       "representatives": np.ascontiguousarray(representatives, np.float32)})

    def embed_boxes(self, image, boxes: np.ndarray) -> np.ndarray:
        return self._embed.run(None, {"image": image.tensor, "boxes": np.ascontiguousarray(boxes, np.float32)})[0]


class _TorchGraphs:
    """Two torch callables with the graphs' signatures, fed numpy, answering numpy."""

    def __init__(self, detect, embed, device) -> None:
        self._detect, self._embed, self._device = detect, embed, device

    def _tensor(self, array: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(self._device)

    def _image(self, array: np.ndarray):
        import torch

        # channels-last convolutions: about 1.2x faster on CPU (benchmarks/detector_runtime.py)
        return self._tensor(array).contiguous(memory_format=torch.channels_last)

    def detect(self, image, representatives: np.ndarray):
        import torch

        with torch.inference_mode():
            outputs = self._detect(self._image(image.tensor), self._tensor(image.image_size),
                                   self._tensor(representatives))
        return [o.cpu().numpy() for o in outputs]

    def embed_boxes(self, image, boxes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self._embed(self._image(image.tensor), self._tensor(boxes)).cpu().numpy()


class TorchScriptDetectorBackend(_TorchGraphs):
    name = "torchscript"

    def __init__(self, detection_path: Path, embedding_path: Path, device: str = "cpu") -> None:
        import torch
        import torchvision  # noqa: F401  registers torchvision::roi_align and torchvision::nms

        from repmet.devices import resolve_device

        self.device = device
        target = resolve_device(device, option="device")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            # straight onto the device: a frozen graph's weights are constants that .to() leaves
            detect = torch.jit.load(str(detection_path), map_location=target).eval()
            embed = torch.jit.load(str(embedding_path), map_location=target).eval()
        super().__init__(detect, embed, target)


class AotiDetectorBackend(_TorchGraphs):
    name = "aoti"

    def __init__(self, detection_path: Path, embedding_path: Path, device: str = "cpu") -> None:
        import torch
        import torchvision  # noqa: F401  registers torchvision::roi_align and torchvision::nms

        from repmet.runtime.backends.torch_backends import load_aoti_packages

        self.device = device
        super().__init__(*load_aoti_packages([detection_path, embedding_path], device), torch.device("cpu"))

    def _image(self, array: np.ndarray):
        return self._tensor(array)  # contiguous NCHW, as compiled


class EagerDetectorBackend(_TorchGraphs):
    name = "torch"

    def __init__(self, model_path: Path, canvas: int, device: str = "cpu") -> None:
        from repmet.devices import resolve_device
        from repmet.models.detection.fixed_shape_graph import BoxEmbeddingGraph, DetectionGraph
        from repmet.methods import open_checkpoint

        self.device = device
        target = resolve_device(device, option="device")
        model = open_checkpoint(model_path).model.float().eval()
        super().__init__(DetectionGraph(model, canvas).eval().to(target), BoxEmbeddingGraph(model).eval().to(target),
                         target)


def open_detector_graphs(graph_key: str, detection_path: Path, embedding_path: Path, device: str = "cpu",
                         threads: int = 0):
    """The backend that runs an artifact's ``graphs[graph_key]`` (onnx, torchscript or aoti)."""
    if graph_key == "onnx":
        return OnnxRuntimeDetectorBackend(detection_path, embedding_path, device, threads)
    if graph_key == "aoti":
        return AotiDetectorBackend(detection_path, embedding_path, device)
    return TorchScriptDetectorBackend(detection_path, embedding_path, device)
