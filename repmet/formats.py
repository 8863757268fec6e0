"""The one table of export formats: what ``metric-export --format`` calls a format, the key of
its graphs in an artifact's ``metadata.json``, and the runtime backend that runs it.
Needs only the standard library (export and the torch-free runtime both read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GraphFormat:
    cli_name: str  # metric-export --format NAME
    graph_key: str  # metadata.json: graphs[graph_key]
    backend: str  # FewShotClassifier.load(..., backend=NAME)


FORMATS: tuple[GraphFormat, ...] = (
    GraphFormat("torchscript", "torchscript", "torchscript"),
    GraphFormat("onnx", "onnx", "onnxruntime"),
    GraphFormat("trt", "tensorrt", "tensorrt"),
    GraphFormat("aoti", "aoti", "aoti"),
)
EAGER_BACKEND = "torch"  # the model rebuilt from model.pt; no exported graph
BACKENDS: tuple[str, ...] = (EAGER_BACKEND, *(f.backend for f in FORMATS))
CLI_FORMATS: tuple[str, ...] = tuple(f.cli_name for f in FORMATS)


def by_cli_name(name: str) -> GraphFormat:
    return next(f for f in FORMATS if f.cli_name == name)


def by_graph_key(key: str) -> GraphFormat:
    return next(f for f in FORMATS if f.graph_key == key)


def by_backend(backend: str) -> GraphFormat:
    return next(f for f in FORMATS if f.backend == backend)
