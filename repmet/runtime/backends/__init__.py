"""Runtime backends by name, each a plug-in (:mod:`repmet.runtime.backends.plugin`): ask for a
classifier runner or a detector runner, by name or ``auto``. Nothing here names a backend: the
plug-ins say what they run, where, and in which order ``auto`` tries them."""

from __future__ import annotations

from repmet.errors import UserError
from repmet.artifact.reader import Artifact
from repmet.runtime.backends.base import Backend, numpy_head
from repmet.runtime.backends.plugin import RUNTIME_BACKENDS, RuntimeBackend


def backend_names() -> list[str]:
    """Every registered backend, in ``auto``'s order, then the ones used only when named."""
    plugins = [plugin for _, plugin in RUNTIME_BACKENDS.items()]
    return [p.name for p in sorted(plugins, key=lambda p: (p.auto_priority is None, p.auto_priority or 0, p.name))]


def choose_backend(artifact: Artifact, device: str, task: str | None = None) -> RuntimeBackend:
    """``auto``: the first backend, by priority, that runs the artifact's task, has its graphs in
    the artifact and can run on ``device`` here; the eager model.pt is always last."""
    task = task or artifact.task
    tried = []
    for name in backend_names():
        plugin = RUNTIME_BACKENDS.get(name)
        if plugin.auto_priority is None or task not in plugin.tasks or not plugin.has_graphs(artifact):
            continue
        reason = plugin.unavailable_reason(device)
        if reason is None:
            return plugin
        tried.append(f"{name}: {reason}")
    raise UserError(f"no backend can run {artifact.folder} on {device} here ({'; '.join(tried) or 'none registered'})")


def resolve_backend(artifact: Artifact, backend: str, device: str, task: str | None = None) -> RuntimeBackend:
    """The plug-in called ``backend`` (or ``auto``'s choice), checked against the task, the
    device and this machine; a sentence when it cannot run."""
    if not (device == "cpu" or device.startswith("cuda")):
        raise UserError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")
    task = task or artifact.task
    if backend == "auto":
        return choose_backend(artifact, device, task)
    plugin = RUNTIME_BACKENDS.get(backend, where="backend")
    if task not in plugin.tasks:
        runs = [n for n in backend_names() if task in RUNTIME_BACKENDS.get(n).tasks]
        raise UserError(f"backend {backend!r} does not run {task} artifacts; choose from auto, {', '.join(runs)}")
    if plugin.graph_key is not None:
        plugin.graphs(artifact)  # a sentence naming the format to export when they are missing
    reason = plugin.unavailable_reason(device)
    if reason is not None:
        raise UserError(reason)
    return plugin


def create_backend(artifact: Artifact, backend: str = "auto", device: str = "cpu", threads: int = 0) -> Backend:
    """A classifier runner (``embed``, ``head``) for ``artifact``."""
    return resolve_backend(artifact, backend, device, "classification").open_classifier(artifact, device, threads)


def open_detector_backend(artifact: Artifact, backend: str = "auto", device: str = "cpu", threads: int = 0):
    """A detector runner (``detect``, ``embed_boxes``) for ``artifact``."""
    return resolve_backend(artifact, backend, device, "detection").open_detector(artifact, device, threads)


def verifying_backend(graph_key: str | None) -> RuntimeBackend:
    """The backend metric-export checks ``graph_key``'s graphs with (None: the eager reference):
    the first, in ``auto``'s order, that runs them."""
    for name in backend_names():
        if RUNTIME_BACKENDS.get(name).graph_key == graph_key:
            return RUNTIME_BACKENDS.get(name)
    raise UserError(f"no backend runs {graph_key} graphs")


__all__ = ["Backend", "RUNTIME_BACKENDS", "RuntimeBackend", "backend_names", "choose_backend", "create_backend",
           "numpy_head", "open_detector_backend", "resolve_backend", "verifying_backend"]
