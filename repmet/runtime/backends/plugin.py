"""A runtime backend is a plug-in: one subpackage of ``repmet.runtime.backends`` (or a package
named by the ``repmet.backends`` entry point) registers a :class:`RuntimeBackend` that says
which of an artifact's graphs it runs, for which tasks, whether it can run here (and why not,
as ONNX Runtime lists its providers), and opens the runners. ``backend="auto"`` is then a
priority list over the registered plug-ins, never a branch on their names.

Discovery imports only each plug-in's ``__init__``, which must stay light: the frameworks
(onnxruntime, torch, tensorrt) load when a runner is opened, so the ONNX Runtime backend still
runs without torch."""

from __future__ import annotations

from pathlib import Path

from repmet.errors import UserError
from repmet.artifact.graph_formats import by_graph_key
from repmet.registry import Registry, subpackage_loader

TASKS = ("classification", "detection")


class RuntimeBackend:
    """One way of running an artifact. Subclasses set the class attributes and open runners:
    ``open_classifier`` returns a :class:`repmet.runtime.backends.base.Backend`;
    ``detector_runner`` returns an object with ``detect(image, representatives)`` and
    ``embed_boxes(image, boxes)`` (see ``repmet.runtime.detector``)."""

    name: str = ""
    graph_key: str | None = None  # runs metadata["graphs"][graph_key]; None: the artifact's model.pt
    tasks: tuple[str, ...] = TASKS
    auto_priority: int | None = None  # place in backend="auto", lower first; None: only when named
    verification_device: str = "cpu"  # where metric-export checks this backend's graphs

    def unavailable_reason(self, device: str) -> str | None:
        """None when this backend can run on ``device`` here, else why not, in one sentence."""
        return None

    def open_classifier(self, artifact, device: str, threads: int):
        raise UserError(f"the {self.name} backend does not run classifiers")

    def open_detector(self, artifact, device: str, threads: int):
        graphs = self.graphs(artifact)
        return self.detector_runner(artifact.file(graphs["detection"]), artifact.file(graphs["box_embedding"]),
                                    device, threads)

    def detector_runner(self, detection_path: Path, embedding_path: Path, device: str, threads: int):
        raise UserError(f"the {self.name} backend does not run detectors")

    def has_graphs(self, artifact) -> bool:
        return self.graph_key is None or self.graph_key in artifact.metadata["graphs"]

    def graphs(self, artifact) -> dict:
        """This backend's entry of the artifact's graphs, or a sentence saying how to export them."""
        graphs = artifact.metadata["graphs"]
        if self.graph_key not in graphs:
            exported = ", ".join(sorted(graphs)) or "none"
            fmt = by_graph_key(self.graph_key).cli_name
            raise UserError(f"artifact {artifact.folder} has no {self.graph_key} graphs (it has: {exported}); export "
                            f"them with metric-export --format {fmt}, or choose another backend")
        return graphs[self.graph_key]


RUNTIME_BACKENDS: Registry[RuntimeBackend] = Registry(
    "backend", subpackage_loader(__name__.rsplit(".", 1)[0], entry_point_group="repmet.backends"))


def register_backend(backend: RuntimeBackend) -> RuntimeBackend:
    return RUNTIME_BACKENDS.register(backend.name, backend)
