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
from repmet.runtime.backends.tensorrt.cuda import check_cuda, cuda_runtime, current_gpu, tensorrt_unavailable_reason


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
        self.cudart = cuda_runtime()
        check_cuda(self.cudart.cudaSetDevice(index))
        self.device, self.distance, self.sigma = device, distance, sigma
        self.max_batch = int(built["max_batch"])
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self._engine is None:
            raise UserError(f"TensorRT could not deserialise {engine_path}; export the engine again here")
        self._context = self._engine.create_execution_context()
        self._stream = check_cuda(self.cudart.cudaStreamCreate())
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
            d_in = check_cuda(cudart.cudaMalloc(images.nbytes))
            d_out = check_cuda(cudart.cudaMalloc(out.nbytes))
            try:
                h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
                check_cuda(cudart.cudaMemcpyAsync(d_in, images.ctypes.data, images.nbytes, h2d, self._stream))
                self._context.set_tensor_address("images", int(d_in))
                self._context.set_tensor_address("embeddings", int(d_out))
                if not self._context.execute_async_v3(int(self._stream)):
                    raise RuntimeError("TensorRT execution failed")
                check_cuda(cudart.cudaMemcpyAsync(out.ctypes.data, d_out, out.nbytes, d2h, self._stream))
                check_cuda(cudart.cudaStreamSynchronize(self._stream))
            finally:
                cudart.cudaFree(d_in)
                cudart.cudaFree(d_out)
        return out.astype(np.float32)

    def head(self, embeddings: np.ndarray, representatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return numpy_head(embeddings, representatives, self.distance, self.sigma)
