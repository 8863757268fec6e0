"""Eager PyTorch: the model rebuilt from the artifact's ``model.pt`` (no exported graph), for
both tasks; the detector runs the same fixed-shape graphs that export traces."""

from __future__ import annotations

from pathlib import Path

from repmet.runtime.backends.torch_common import TorchClassifierRunner, TorchDetectorRunner, torch_device


class EagerTorchBackend(TorchClassifierRunner):
    name = "torch"

    def __init__(self, model_path: Path, device: str = "cpu") -> None:
        from repmet.methods import open_checkpoint

        trained = open_checkpoint(model_path)
        super().__init__(trained.embedding_net(), trained.distance_head(), device)


class EagerDetectorBackend(TorchDetectorRunner):
    name = "torch"

    def __init__(self, model_path: Path, canvas: int, device: str = "cpu") -> None:
        from repmet.models.detection.fixed_shape_graph import BoxEmbeddingGraph, DetectionGraph
        from repmet.methods import open_checkpoint

        self.device = device
        target = torch_device(device)
        model = open_checkpoint(model_path).model.float().eval()
        super().__init__(DetectionGraph(model, canvas).eval().to(target), BoxEmbeddingGraph(model).eval().to(target),
                         target)
