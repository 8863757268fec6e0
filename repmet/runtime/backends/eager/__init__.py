"""The ``torch`` backend: the model rebuilt eagerly from the artifact's ``model.pt`` (every
artifact has one), CPU or CUDA, both tasks; the last choice of ``auto``, and the reference that
metric-export checks every exported graph against."""

from __future__ import annotations

from repmet.runtime.backends.plugin import RuntimeBackend, register_backend


class EagerTorchPlugin(RuntimeBackend):
    name = "torch"
    graph_key = None
    auto_priority = 90

    def unavailable_reason(self, device: str) -> str | None:
        from repmet.runtime.backends.torch_common import torch_unavailable_reason

        return torch_unavailable_reason(device)

    def open_classifier(self, artifact, device: str, threads: int):
        from repmet.runtime.backends.eager.runners import EagerTorchBackend

        return EagerTorchBackend(artifact.file(artifact.metadata["model"]), device)

    def open_detector(self, artifact, device: str, threads: int):
        from repmet.runtime.backends.eager.runners import EagerDetectorBackend

        return EagerDetectorBackend(artifact.file(artifact.metadata["model"]), artifact.metadata["detection"]["canvas"],
                                    device)


register_backend(EagerTorchPlugin())
