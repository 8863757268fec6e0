"""The graph keys an artifact's ``metadata.json`` may hold, and the ``metric-export --format`` that
writes each: part of the artifact contract, because the schema checks an untrusted metadata file
against it and a runtime's message names the option that exports missing graphs. The exporters
are plug-ins (``repmet.export.formats``), and so are the backends that run the graphs
(``repmet.runtime.backends``: each names its ``graph_key``); a contracts test holds the plug-ins
and this table to each other. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GraphFormat:
    cli_name: str  # metric-export --format NAME
    graph_key: str  # metadata.json: graphs[graph_key]


FORMATS: tuple[GraphFormat, ...] = (
    GraphFormat("torchscript", "torchscript"),
    GraphFormat("onnx", "onnx"),
    GraphFormat("int8", "onnx_int8"),
    GraphFormat("trt", "tensorrt"),
    GraphFormat("aoti", "aoti"),
    GraphFormat("triton", "triton"),
)
CLI_FORMATS: tuple[str, ...] = tuple(f.cli_name for f in FORMATS)


def by_cli_name(name: str) -> GraphFormat:
    return next(f for f in FORMATS if f.cli_name == name)


def by_graph_key(key: str) -> GraphFormat:
    return next(f for f in FORMATS if f.graph_key == key)
