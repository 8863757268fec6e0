"""The ``onnxruntime`` backend: an artifact's ``onnx`` graphs on ONNX Runtime, CPU or CUDA
(onnxruntime-gpu), both tasks; the first choice of ``auto`` where TensorRT is not. No torch."""

from __future__ import annotations

import importlib.util

from repmet.runtime.backends.plugin import RuntimeBackend, register_backend


class OnnxRuntimePlugin(RuntimeBackend):
    name = "onnxruntime"
    graph_key = "onnx"
    auto_priority = 10

    def unavailable_reason(self, device: str) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return ("the onnxruntime backend needs the onnxruntime package (pip install onnxruntime, or "
                    "onnxruntime-gpu instead of it on a CUDA machine)")
        if device.startswith("cuda"):
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                return ("device 'cuda' with onnxruntime needs the onnxruntime-gpu package (uninstall onnxruntime, "
                        "then pip install onnxruntime-gpu) and a CUDA GPU")
        return None

    def open_classifier(self, artifact, device: str, threads: int):
        from repmet.runtime.backends.onnxruntime.runners import OnnxRuntimeBackend

        embedding, head = artifact.graph(self.graph_key, "embedding"), artifact.graph(self.graph_key, "head")
        runner = OnnxRuntimeBackend(embedding, head, device, threads)
        runner.name = self.name  # a plug-in built on this one (onnxruntime-int8) answers with its own name
        return runner

    def detector_runner(self, detection_path, embedding_path, device: str, threads: int):
        from repmet.runtime.backends.onnxruntime.runners import OnnxRuntimeDetectorBackend

        runner = OnnxRuntimeDetectorBackend(detection_path, embedding_path, device, threads)
        runner.name = self.name
        return runner


register_backend(OnnxRuntimePlugin())
