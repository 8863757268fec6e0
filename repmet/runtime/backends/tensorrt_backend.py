"""TensorRT: a serialized engine of the embedding network, run through the TensorRT Python API
with device memory from cuda-python (no torch). The distance head is one matrix product,
computed in numpy on the host.

An engine only runs under the TensorRT version and on the GPU architecture that built it:
both are in the artifact's metadata and checked before deserialising."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from repmet.errors import UserError
from repmet.runtime.backends.base import Backend, numpy_head


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            raise UserError("the tensorrt backend needs cuda-python (pip install 'repmet[gpu]')") from None
    return cudart


def _check(result):
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT and a CUDA GPU are usable here, else the reason in one sentence."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed; on a machine with an NVIDIA GPU run pip install 'repmet[gpu]'"
    try:
        cudart = _cudart()
        count = _check(cudart.cudaGetDeviceCount())
    except (UserError, RuntimeError) as exc:
        return f"no usable CUDA runtime ({exc})"
    if count < 1:
        return "no CUDA GPU is visible; TensorRT engines need an NVIDIA GPU"
    return None


def current_gpu(index: int = 0) -> tuple[str, str]:
    """``(compute capability "major.minor", device name)`` of CUDA device ``index``."""
    cudart = _cudart()
    props = _check(cudart.cudaGetDeviceProperties(index))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return f"{props.major}.{props.minor}", name.rstrip("\x00")


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, engine_path: Path, built: dict, distance: str, sigma: float, device: str = "cuda") -> None:
        reason = tensorrt_unavailable_reason()
        if reason:
            raise UserError(reason)
        import tensorrt as trt

        index = int(device.split(":")[1]) if ":" in device else 0
        capability, gpu_name = current_gpu(index)
        if built["tensorrt"] != trt.__version__:
            raise UserError(f"{engine_path} was built with TensorRT {built['tensorrt']}, this is TensorRT "
                            f"{trt.__version__}; export the engine again here (metric-export --format trt)")
        if built["compute_capability"] != capability:
            raise UserError(f"{engine_path} was built for compute capability {built['compute_capability']} "
                            f"({built['gpu']}), this GPU is {capability} ({gpu_name}); export the engine again here")
        self.cudart = _cudart()
        _check(self.cudart.cudaSetDevice(index))
        self.device, self.distance, self.sigma = device, distance, sigma
        self.max_batch = int(built["max_batch"])
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self._engine is None:
            raise UserError(f"TensorRT could not deserialise {engine_path}; export the engine again here")
        self._context = self._engine.create_execution_context()
        self._stream = _check(self.cudart.cudaStreamCreate())
        self._lock = threading.Lock()  # one execution context: calls take turns
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype("embeddings")))

    def embed(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, np.float32)
        chunks = [self._embed_chunk(images[i:i + self.max_batch]) for i in range(0, len(images), self.max_batch)]
        return np.concatenate(chunks)

    def _embed_chunk(self, images: np.ndarray) -> np.ndarray:
        cudart = self.cudart
        with self._lock:
            self._context.set_input_shape("images", images.shape)
            out_shape = tuple(self._context.get_tensor_shape("embeddings"))
            out = np.empty(out_shape, self._out_dtype)
            d_in = _check(cudart.cudaMalloc(images.nbytes))
            d_out = _check(cudart.cudaMalloc(out.nbytes))
            try:
                h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
                _check(cudart.cudaMemcpyAsync(d_in, images.ctypes.data, images.nbytes, h2d, self._stream))
                self._context.set_tensor_address("images", int(d_in))
                self._context.set_tensor_address("embeddings", int(d_out))
                if not self._context.execute_async_v3(int(self._stream)):
                    raise RuntimeError("TensorRT execution failed")
                _check(cudart.cudaMemcpyAsync(out.ctypes.data, d_out, out.nbytes, d2h, self._stream))
                _check(cudart.cudaStreamSynchronize(self._stream))
            finally:
                cudart.cudaFree(d_in)
                cudart.cudaFree(d_out)
        return out.astype(np.float32)

    def head(self, embeddings: np.ndarray, representatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return numpy_head(embeddings, representatives, self.distance, self.sigma)
