"""AOTInductor packages (``.pt2``, compiled for the CPU), every call checked against the input
shapes recorded in the package (:mod:`repmet.runtime.backends.aoti.input_shapes`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision  # noqa: F401  registers torchvision::roi_align and torchvision::nms

from repmet.runtime.backends.base import Backend
from repmet.runtime.backends.torch_common import TorchDetectorRunner


def load_aoti_packages(paths: list[Path], device: str) -> list:
    """AOTInductor packages (compiled for the CPU, so refused on any other device) as callables."""
    import logging

    from torch._inductor import aoti_load_package

    from repmet.errors import UserError
    from repmet.runtime.backends.aoti.input_shapes import CheckedPackage

    if device != "cpu":
        raise UserError(f"the aoti graphs in {paths[0].parent} were compiled for the CPU; use device='cpu' or "
                        f"another backend")
    # its "No CUDA runtime is found" note is noise for a CPU package
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return [CheckedPackage(aoti_load_package(str(path)), path) for path in paths]


class AotiBackend(Backend):
    """AOTInductor packages (CPU), fed contiguous NCHW images as they were exported."""

    name = "aoti"

    def __init__(self, embedding_path: Path, head_path: Path, device: str = "cpu") -> None:
        self.device = device
        self._embedding, self._head = load_aoti_packages([embedding_path, head_path], device)

    @torch.inference_mode()
    def embed(self, images: np.ndarray) -> np.ndarray:
        return self._embedding(torch.from_numpy(np.ascontiguousarray(images, np.float32))).numpy()

    @torch.inference_mode()
    def head(self, embeddings: np.ndarray, representatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        distances, posteriors = self._head(torch.from_numpy(np.ascontiguousarray(embeddings, np.float32)),
                                           torch.from_numpy(np.ascontiguousarray(representatives, np.float32)))
        return distances.numpy(), posteriors.numpy()


class AotiDetectorBackend(TorchDetectorRunner):
    name = "aoti"

    def __init__(self, detection_path: Path, embedding_path: Path, device: str = "cpu") -> None:
        self.device = device
        super().__init__(*load_aoti_packages([detection_path, embedding_path], device), torch.device("cpu"))

    def _image(self, array: np.ndarray):
        return self._tensor(array)  # contiguous NCHW, as compiled
