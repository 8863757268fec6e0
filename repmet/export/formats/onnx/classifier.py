"""ONNX with the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``).

Why not the dynamo exporter (the default since torch 2.9): it needs ``onnxscript``, one more
dependency, and gains nothing for these graphs: convolutions, pooling, matrix products and a
softmax, whose only dynamic dimensions (batch, classes, representatives) the TorchScript
exporter marks with ``dynamic_axes``. Both graphs are checked with ``onnx.checker`` (with
shape inference) before they are written into the artifact.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from repmet.errors import UserError
from repmet.models import DistanceHead, EmbeddingNet

MIN_OPSET = 13  # Softmax over one axis, ReduceSum with axes as input
DEFAULT_OPSET = 17
MAX_OPSET = 20  # the newest the TorchScript-based exporter writes


def export_embedding_graph(embedding: torch.nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    """``images [B, C, H, W] -> embeddings [B, D]`` with a dynamic batch (also used for TensorRT's fp16 graph)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(embedding.eval(), (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["embeddings"],
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}})


def export_onnx(embedding: EmbeddingNet, head: DistanceHead, example: torch.Tensor, folder: Path,
                opset: int = DEFAULT_OPSET) -> dict[str, str]:
    import onnx

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"--opset {opset} is not supported: use {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    export_embedding_graph(embedding, example, folder / "embedding.onnx", opset)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embeddings = embedding.eval()(example)
        reps = embeddings[:, None, :].repeat(1, 2, 1)
        torch.onnx.export(head.eval(), (embeddings, reps), str(folder / "head.onnx"), dynamo=False,
                          opset_version=opset, input_names=["embeddings", "representatives"],
                          output_names=["distances", "posteriors"],
                          dynamic_axes={"embeddings": {0: "batch"},
                                        "representatives": {0: "classes", 1: "reps_per_class"},
                                        "distances": {0: "batch", 1: "classes", 2: "reps_per_class"},
                                        "posteriors": {0: "batch", 1: "classes"}})
    for name in ("embedding.onnx", "head.onnx"):
        onnx.checker.check_model(str(folder / name), full_check=True)
    return {"embedding": "embedding.onnx", "head": "head.onnx", "opset": opset, "exporter": "torchscript"}
