"""The ``tensorrt`` backend: the classifier's TensorRT engine (CUDA only), the first choice of
``auto`` on a GPU when the artifact has one. Detectors are not run here yet."""

from __future__ import annotations

from repmet.runtime.backends.plugin import RuntimeBackend, register_backend


class TensorRTPlugin(RuntimeBackend):
    name = "tensorrt"
    graph_key = "tensorrt"
    tasks = ("classification",)
    auto_priority = 0
    verification_device = "cuda"

    def unavailable_reason(self, device: str) -> str | None:
        if not device.startswith("cuda"):
            return "the tensorrt backend runs on a CUDA GPU; use device='cuda'"
        from repmet.runtime.backends.tensorrt.cuda import tensorrt_unavailable_reason

        return tensorrt_unavailable_reason()

    def open_classifier(self, artifact, device: str, threads: int):
        from repmet.runtime.backends.tensorrt.runner import TensorRTBackend

        meta = artifact.metadata
        return TensorRTBackend(artifact.graph(self.graph_key, "embedding"), meta["graphs"][self.graph_key],
                               meta["head"]["distance"], meta["head"]["sigma"], device)


register_backend(TensorRTPlugin())
