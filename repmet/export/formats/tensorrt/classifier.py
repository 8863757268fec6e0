"""A serialized TensorRT engine of the embedding network, built with the TensorRT Python API:
one optimisation profile for batch 1..max_batch.

fp16: TensorRT 11 removed the weak-typing builder flags (``BuilderFlag.FP16``): precision comes
from the types in the ONNX graph. So for ``--fp16`` the embedding network is exported once more
with fp16 weights and arithmetic (fp32 in and out) and the engine is built from that graph as a
strongly typed network, which TensorRT 10 and 11 both honour.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from repmet.errors import UserError
from repmet.export.formats.onnx.classifier import export_embedding_graph
from repmet.runtime.backends.tensorrt.cuda import current_gpu, tensorrt_unavailable_reason

WORKSPACE_BYTES = 2 << 30


class _HalfPrecision(nn.Module):
    """fp32 images in, fp16 network, fp32 embeddings out."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network.half()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images.half()).float()


def _fp16_onnx(embedding: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    import copy

    half = _HalfPrecision(copy.deepcopy(embedding)).cuda()
    export_embedding_graph(half, example.cuda(), path, opset)


def _network_flags(trt, major: int, strongly_typed: bool) -> int:
    if major >= 11:
        return 0  # explicit batch and strong typing are the only modes
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def export_tensorrt(folder: Path, embedding: nn.Module, example: torch.Tensor, input_shape: tuple[int, int, int],
                    max_batch: int, fp16: bool, opset: int) -> dict:
    reason = tensorrt_unavailable_reason()
    if reason:
        raise UserError(f"cannot build a TensorRT engine: {reason}")
    import tensorrt as trt

    with tempfile.TemporaryDirectory() as scratch:
        source = folder / "embedding.onnx"
        if fp16:
            source = Path(scratch) / "embedding_fp16.onnx"
            _fp16_onnx(embedding, example, source, opset)
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        major = int(trt.__version__.split(".")[0])
        network = builder.create_network(_network_flags(trt, major, strongly_typed=fp16))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(source.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise UserError(f"TensorRT cannot parse {source.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    profile.set_shape("images", (1, *input_shape), (max(1, max_batch // 2), *input_shape), (max_batch, *input_shape))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UserError("TensorRT failed to build the engine (see its log above)")
    (folder / "embedding.plan").write_bytes(bytes(plan))
    capability, gpu = current_gpu()
    return {"embedding": "embedding.plan", "tensorrt": trt.__version__, "compute_capability": capability,
            "gpu": gpu, "fp16": fp16, "max_batch": max_batch,
            "built_from": "embedding.onnx" if not fp16 else "an fp16 export of the embedding network"}
