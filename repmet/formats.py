"""The one table of export formats: what ``metric-export --format`` calls a format and the key of
its graphs in an artifact's ``metadata.json``. Which backends run a format's graphs is the
backends' own business (each plug-in names its ``graph_key``: ``repmet.runtime.backends``), so
a second backend for the same graphs needs no change here. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GraphFormat:
    cli_name: str  # metric-export --format NAME
    graph_key: str  # metadata.json: graphs[graph_key]


FORMATS: tuple[GraphFormat, ...] = (
    GraphFormat("torchscript", "torchscript"),
    GraphFormat("onnx", "onnx"),
    GraphFormat("trt", "tensorrt"),
    GraphFormat("aoti", "aoti"),
)
CLI_FORMATS: tuple[str, ...] = tuple(f.cli_name for f in FORMATS)


def by_cli_name(name: str) -> GraphFormat:
    return next(f for f in FORMATS if f.cli_name == name)


def by_graph_key(key: str) -> GraphFormat:
    return next(f for f in FORMATS if f.graph_key == key)
