"""The ``onnxruntime-int8`` backend: an artifact's ``onnx_int8`` graphs (``metric-export --format
int8``) on ONNX Runtime's CPU integer kernels (VNNI where the CPU has it), both tasks; the
first choice of ``auto`` on a CPU when the artifact holds them, since a user exports int8 to run
it. The ONNX Runtime plug-in with another graph key, the CPU only. No torch."""

from __future__ import annotations

from repmet.runtime.backends.onnxruntime import OnnxRuntimePlugin
from repmet.runtime.backends.plugin import register_backend


class OnnxRuntimeInt8Plugin(OnnxRuntimePlugin):
    name = "onnxruntime-int8"
    graph_key = "onnx_int8"
    auto_priority = 5

    def unavailable_reason(self, device: str) -> str | None:
        if not device.startswith("cpu"):
            return f"int8 graphs run on the CPU (device {device!r} asked for); choose another backend for a GPU"
        return super().unavailable_reason(device)


register_backend(OnnxRuntimeInt8Plugin())
