"""Backends by name. Each is imported only when asked for, so the ONNX Runtime and TensorRT
backends load without torch."""

from __future__ import annotations

from repmet.errors import UserError
from repmet.formats import BACKENDS, EAGER_BACKEND, by_backend
from repmet.runtime.artifact import Artifact
from repmet.runtime.backends.base import Backend, numpy_head


def choose_backend(artifact: Artifact, device: str) -> str:
    """``auto``: TensorRT on CUDA when the artifact has an engine, else ONNX Runtime, else
    TorchScript, else eager PyTorch."""
    formats = artifact.formats()
    preference = ("tensorrt", "onnxruntime", "torchscript") if device.startswith("cuda") else ("onnxruntime", "torchscript")
    for backend in preference:
        if by_backend(backend).graph_key in formats:
            return backend
    return EAGER_BACKEND


def create_backend(artifact: Artifact, backend: str = "auto", device: str = "cpu", threads: int = 0) -> Backend:
    if backend == "auto":
        backend = choose_backend(artifact, device)
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose auto or one of {', '.join(BACKENDS)}")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UserError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")
    meta = artifact.metadata
    if backend == "onnxruntime":
        from repmet.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(artifact.graph("onnx", "embedding"), artifact.graph("onnx", "head"), device, threads)
    if backend == "tensorrt":
        from repmet.runtime.backends.tensorrt_backend import TensorRTBackend

        if device == "cpu":
            raise UserError("the tensorrt backend runs on a CUDA GPU; use device='cuda'")
        return TensorRTBackend(artifact.graph("tensorrt", "embedding"), meta["graphs"]["tensorrt"],
                               meta["head"]["distance"], meta["head"]["sigma"], device)
    if backend == "aoti":
        from repmet.runtime.backends.torch_backends import AotiBackend

        return AotiBackend(artifact.graph("aoti", "embedding"), artifact.graph("aoti", "head"), device)
    if backend == "torchscript":
        from repmet.runtime.backends.torch_backends import TorchScriptBackend

        return TorchScriptBackend(artifact.graph("torchscript", "embedding"), artifact.graph("torchscript", "head"),
                                  device)
    from repmet.runtime.backends.torch_backends import EagerTorchBackend

    return EagerTorchBackend(artifact.file(meta["model"]), device)


__all__ = ["BACKENDS", "Backend", "choose_backend", "create_backend", "numpy_head"]
