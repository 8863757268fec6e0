"""The ``onnxruntime-int8`` backend: an artifact's ``onnx_int8`` graphs (``metric-export --format
int8``) on ONNX Runtime's CPU integer kernels (VNNI where the CPU has it), both tasks; the
first choice of ``auto`` on a CPU when the artifact holds them, since a user exports int8 to run
it. No torch."""

from __future__ import annotations

import importlib.util

from repmet.runtime.backends.plugin import RuntimeBackend, register_backend


class OnnxRuntimeInt8Plugin(RuntimeBackend):
    name = "onnxruntime-int8"
    graph_key = "onnx_int8"
    auto_priority = 5

    def unavailable_reason(self, device: str) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "the onnxruntime-int8 backend needs the onnxruntime package (pip install onnxruntime)"
        if not device.startswith("cpu"):
            return f"int8 graphs run on the CPU (device {device!r} asked for); choose another backend for a GPU"
        return None

    def open_classifier(self, artifact, device: str, threads: int):
        from repmet.runtime.backends.onnxruntime.runners import OnnxRuntimeBackend

        runner = OnnxRuntimeBackend(artifact.graph(self.graph_key, "embedding"), artifact.graph(self.graph_key, "head"),
                                    device, threads)
        runner.name = self.name
        return runner

    def detector_runner(self, detection_path, embedding_path, device: str, threads: int):
        from repmet.runtime.backends.onnxruntime.runners import OnnxRuntimeDetectorBackend

        runner = OnnxRuntimeDetectorBackend(detection_path, embedding_path, device, threads)
        runner.name = self.name
        return runner


register_backend(OnnxRuntimeInt8Plugin())
