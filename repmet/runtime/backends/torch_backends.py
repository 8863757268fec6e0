"""Eager PyTorch (the model rebuilt from the artifact's ``model.pt``) and TorchScript."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from repmet.devices import resolve_device
from repmet.runtime.backends.base import Backend


def _device(device: str) -> torch.device:
    return resolve_device(device, option="device")


class _TorchBackend(Backend):
    """Channels-last images, as in training: 1.5x faster for these CNNs on CPU (measured,
    benchmarks/runtime_bench.py) and what cuDNN prefers on GPU."""

    def __init__(self, embedding: torch.nn.Module, head: torch.nn.Module, device: str) -> None:
        self.device = device
        self._device = _device(device)
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


class EagerTorchBackend(_TorchBackend):
    name = "torch"

    def __init__(self, model_path: Path, device: str = "cpu") -> None:
        from repmet.methods import open_checkpoint

        trained = open_checkpoint(model_path)
        super().__init__(trained.embedding_net(), trained.distance_head(), device)


class TorchScriptBackend(_TorchBackend):
    name = "torchscript"

    def __init__(self, embedding_path: Path, head_path: Path, device: str = "cpu") -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            # Straight onto the device: a frozen graph keeps its weights as constants, which
            # Module.to() does not move (seen on CUDA, where .to() left them on the CPU).
            embedding = torch.jit.load(str(embedding_path), map_location=_device(device))
            head = torch.jit.load(str(head_path), map_location=_device(device))
        super().__init__(embedding.eval(), head.eval(), device)


def load_aoti_packages(paths: list[Path], device: str) -> list:
    """AOTInductor packages (compiled for the CPU, so refused on any other device) as callables."""
    import logging

    from torch._inductor import aoti_load_package

    from repmet.errors import UserError
    from repmet.runtime.backends.aoti_shapes import CheckedPackage

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
