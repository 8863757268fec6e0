"""A serialized TensorRT engine built from the embedding ONNX graph with the TensorRT Python API:
one optimisation profile for batch 1..max_batch, fp16 when asked."""

from __future__ import annotations

from pathlib import Path

from repmet.errors import UserError
from repmet.runtime.backends.tensorrt_backend import current_gpu, tensorrt_unavailable_reason

WORKSPACE_BYTES = 2 << 30


def export_tensorrt(folder: Path, input_shape: tuple[int, int, int], max_batch: int, fp16: bool) -> dict:
    reason = tensorrt_unavailable_reason()
    if reason:
        raise UserError(f"cannot build a TensorRT engine: {reason}")
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse((folder / "embedding.onnx").read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT cannot parse embedding.onnx: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        if not getattr(builder, "platform_has_fast_fp16", True):  # deprecated in TensorRT 10
            raise UserError("--fp16 asked for, but this GPU has no fast fp16; export without --fp16")
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape("images", (1, *input_shape), (max(1, max_batch // 2), *input_shape), (max_batch, *input_shape))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UserError("TensorRT failed to build the engine (see its log above)")
    (folder / "embedding.plan").write_bytes(bytes(plan))
    capability, gpu = current_gpu()
    return {"embedding": "embedding.plan", "tensorrt": trt.__version__, "compute_capability": capability,
            "gpu": gpu, "fp16": fp16, "max_batch": max_batch}
