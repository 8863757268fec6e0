"""ONNX Runtime: CPU, or CUDA with the onnxruntime-gpu package, for both tasks. Imports no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repmet.errors import UserError
from repmet.runtime.backends.base import Backend


def onnxruntime_sessions(paths: list[Path], device: str = "cpu", threads: int = 0) -> list:
    """One ONNX Runtime session per graph file, on the CPU or on CUDA (onnxruntime-gpu);
    ``threads``: intra-op CPU threads (0: ONNX Runtime's default). ``InferenceSession.run`` is
    thread-safe, so one session serves every thread.

    Each session has its own intra-op thread pool, whose threads spin for a while after each run
    (ONNX Runtime's default). Only the first graph (the embedding, or the detection graph) keeps
    that: the pool of a graph run after it (the distance head), or rarely (the box embedding of
    an enroll), would spin beside the first graph's threads and take their cores (measured on 2
    cores, Flowers Lite0 batch 1: 7.1 -> 4.9 ms per image without the head's spinning)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("the onnxruntime backend needs the onnxruntime package (pip install onnxruntime, "
                        "or onnxruntime-gpu instead of it on a CUDA machine)") from None
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UserError("device 'cuda' with onnxruntime needs the onnxruntime-gpu package (uninstall "
                            "onnxruntime, then pip install onnxruntime-gpu) and a CUDA GPU")
        index = int(device.split(":")[1]) if ":" in device else 0
        providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    sessions = []
    for index, path in enumerate(paths):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        if index > 0:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions.append(ort.InferenceSession(str(path), options, providers=providers))
    return sessions


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, embedding_path: Path, head_path: Path, device: str = "cpu", threads: int = 0) -> None:
        self.device = device
        self._embedding, self._head = onnxruntime_sessions([embedding_path, head_path], device, threads)

    def embed(self, images: np.ndarray) -> np.ndarray:
        return self._embedding.run(["embeddings"], {"images": np.ascontiguousarray(images, np.float32)})[0]

    def head(self, embeddings: np.ndarray, representatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        distances, posteriors = self._head.run(["distances", "posteriors"], {
            "embeddings": np.ascontiguousarray(embeddings, np.float32),
            "representatives": np.ascontiguousarray(representatives, np.float32)})
        return distances, posteriors


class OnnxRuntimeDetectorBackend:
    name = "onnxruntime"

    def __init__(self, detection_path: Path, embedding_path: Path, device: str = "cpu", threads: int = 0) -> None:
        self.device = device
        self._detect, self._embed = onnxruntime_sessions([detection_path, embedding_path], device, threads)

    def detect(self, image, representatives: np.ndarray):
        return self._detect.run(None, {"image": image.tensor, "image_size": image.image_size,
                                       "representatives": np.ascontiguousarray(representatives, np.float32)})

    def embed_boxes(self, image, boxes: np.ndarray) -> np.ndarray:
        return self._embed.run(None, {"image": image.tensor, "boxes": np.ascontiguousarray(boxes, np.float32)})[0]
