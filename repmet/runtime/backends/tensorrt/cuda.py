"""Whether TensorRT and a CUDA GPU are usable here, and which GPU: the CUDA runtime through
cuda-python (no torch). Export asks it too, before building an engine."""

from __future__ import annotations

from repmet.errors import UserError


def cuda_runtime():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            raise UserError("the tensorrt backend needs cuda-python (pip install 'repmet[gpu]')") from None
    return cudart


def check_cuda(result):
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
        cudart = cuda_runtime()
        count = check_cuda(cudart.cudaGetDeviceCount())
    except (UserError, RuntimeError) as exc:
        return f"no usable CUDA runtime ({exc})"
    if count < 1:
        return "no CUDA GPU is visible; TensorRT engines need an NVIDIA GPU"
    return None


def current_gpu(index: int = 0) -> tuple[str, str]:
    """``(compute capability "major.minor", device name)`` of CUDA device ``index``."""
    cudart = cuda_runtime()
    props = check_cuda(cudart.cudaGetDeviceProperties(index))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return f"{props.major}.{props.minor}", name.rstrip("\x00")
