"""The ``torchscript`` backend: an artifact's ``torchscript`` graphs, CPU or CUDA, both tasks."""

from __future__ import annotations

from repmet.runtime.backends.plugin import RuntimeBackend, register_backend


class TorchScriptPlugin(RuntimeBackend):
    name = "torchscript"
    graph_key = "torchscript"
    auto_priority = 20

    def unavailable_reason(self, device: str) -> str | None:
        from repmet.runtime.backends.torch_common import torch_unavailable_reason

        return torch_unavailable_reason(device)

    def open_classifier(self, artifact, device: str, threads: int):
        from repmet.runtime.backends.torchscript.runners import TorchScriptBackend

        embedding, head = artifact.graph(self.graph_key, "embedding"), artifact.graph(self.graph_key, "head")
        return TorchScriptBackend(embedding, head, device)

    def detector_runner(self, detection_path, embedding_path, device: str, threads: int):
        from repmet.runtime.backends.torchscript.runners import TorchScriptDetectorBackend

        return TorchScriptDetectorBackend(detection_path, embedding_path, device)


register_backend(TorchScriptPlugin())
