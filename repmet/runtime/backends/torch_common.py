"""What the three torch backends (eager, TorchScript, AOTInductor) share: runners fed numpy,
answering numpy, on a torch device."""

from __future__ import annotations

import numpy as np
import torch

from repmet.devices import resolve_device
from repmet.runtime.backends.base import Backend


def torch_device(device: str) -> torch.device:
    return resolve_device(device, option="device")


def torch_unavailable_reason(device: str) -> str | None:
    """Why torch cannot run on ``device`` here (None: it can); imports torch only when installed."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "this backend needs torch (pip install torch torchvision)"
    if device.startswith("cuda"):
        import torch as torch_module

        if not torch_module.cuda.is_available():
            return "device 'cuda' needs a CUDA GPU and a CUDA build of torch; use device='cpu'"
    return None


class TorchClassifierRunner(Backend):
    """Channels-last images, as in training: 1.5x faster for these CNNs on CPU (measured,
    benchmarks/runtime_bench.py) and what cuDNN prefers on GPU."""

    def __init__(self, embedding: torch.nn.Module, head: torch.nn.Module, device: str) -> None:
        self.device = device
        self._device = torch_device(device)
        self._embedding = embedding.to(self._device, memory_format=torch.channels_last)
        self._head = head.to(self._device)

    @torch.inference_mode()
    def embed(self, images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(self._device)
        return self._embedding(batch.contiguous(memory_format=torch.channels_last)).cpu().numpy()

    @torch.inference_mode()
    def head(self, embeddings: np.ndarray, representatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        distances, posteriors = self._head(torch.from_numpy(np.ascontiguousarray(embeddings, np.float32)).to(self._device),
                                           torch.from_numpy(np.ascontiguousarray(representatives, np.float32)).to(self._device))
        return distances.cpu().numpy(), posteriors.cpu().numpy()


class TorchDetectorRunner:
    """Two torch callables with the graphs' signatures, fed numpy, answering numpy."""

    def __init__(self, detect, embed, device) -> None:
        self._detect, self._embed, self._device = detect, embed, device

    def _tensor(self, array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(self._device)

    def _image(self, array: np.ndarray):
        # channels-last convolutions: about 1.2x faster on CPU (benchmarks/detector_runtime.py)
        return self._tensor(array).contiguous(memory_format=torch.channels_last)

    def detect(self, image, representatives: np.ndarray):
        with torch.inference_mode():
            outputs = self._detect(self._image(image.tensor), self._tensor(image.image_size),
                                   self._tensor(representatives))
        return [o.cpu().numpy() for o in outputs]

    def embed_boxes(self, image, boxes: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._embed(self._image(image.tensor), self._tensor(boxes)).cpu().numpy()


