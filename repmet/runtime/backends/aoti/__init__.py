"""The ``aoti`` backend: an artifact's AOTInductor packages (compiled for the CPU), both tasks.
Only when named: its packages are tied to the machine's compiler and CPU, so ``auto`` prefers
the portable graphs."""

from __future__ import annotations

from repmet.runtime.backends.plugin import RuntimeBackend, register_backend


class AotiPlugin(RuntimeBackend):
    name = "aoti"
    graph_key = "aoti"

    def unavailable_reason(self, device: str) -> str | None:
        if device != "cpu":
            return "the aoti graphs are compiled for the CPU; use device='cpu' or another backend"
        from repmet.runtime.backends.torch_common import torch_unavailable_reason

        return torch_unavailable_reason(device)

    def open_classifier(self, artifact, device: str, threads: int):
        from repmet.runtime.backends.aoti.runners import AotiBackend

        embedding, head = artifact.graph(self.graph_key, "embedding"), artifact.graph(self.graph_key, "head")
        return AotiBackend(embedding, head, device)

    def detector_runner(self, detection_path, embedding_path, device: str, threads: int):
        from repmet.runtime.backends.aoti.runners import AotiDetectorBackend

        return AotiDetectorBackend(detection_path, embedding_path, device)


register_backend(AotiPlugin())
