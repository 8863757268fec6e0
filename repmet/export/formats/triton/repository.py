"""A Triton Inference Server model repository. For a classifier: the embedding network (ONNX Runtime
backend, dynamic batching), the distance head with the representatives as an input, and an
ensemble that chains them, so one request (images + the gallery's representatives) returns
embeddings, distances and posteriors.

    REPO/NAME_embedding/config.pbtxt    platform onnxruntime_onnx, max_batch_size B, dynamic batching
    REPO/NAME_embedding/1/model.onnx    the artifact's embedding.onnx
    REPO/NAME_head/config.pbtxt         max_batch_size 0: the representatives [C, K, D] have no batch dimension
    REPO/NAME_head/1/model.onnx         the artifact's head.onnx
    REPO/NAME/config.pbtxt              platform ensemble, max_batch_size 0 (its head does not batch)
    REPO/NAME/1/                        empty: an ensemble has no model file, but Triton wants a version

Where the artifact has a TensorRT engine of the embedding (``--format trt``, built on a GPU), its
plan variant beside them: the same tensors and batching from the engine, and an ensemble that
chains it with the same head (Triton runs a plan only on the GPU model it was built for):

    REPO/NAME_embedding_trt/config.pbtxt   platform tensorrt_plan, max_batch_size B (the engine's profile)
    REPO/NAME_embedding_trt/1/model.plan   the artifact's embedding.plan
    REPO/NAME_trt/config.pbtxt             the ensemble with NAME_embedding_trt as its first step

For a detector (:func:`write_detector_repository`): its two fixed-shape graphs as two models with
no batching (each request is one image on the canvas; the detection graph takes the gallery's
representatives as an input, so enrolling stays a client-side change), their tensors' names,
shapes and types read from the graphs:

    REPO/NAME_detection/config.pbtxt       image [1, 3, S, S], image_size [2], representatives [C, K, D]
                                           -> boxes [M, 4], scores [M], labels [M] (INT64), count [1] (INT64)
    REPO/NAME_box_embedding/config.pbtxt   image [1, 3, S, S], boxes [N, 4] -> embeddings [N, D] (enrolling)

The configs are written as protobuf text by hand (no protobuf needed to export); ``check.py``
parses them back into Triton's own ``ModelConfig`` message when ``tritonclient`` is installed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

VERSION = "1"
# ONNX element types (onnx.TensorProto) -> Triton's data types (model_config.proto)
TRITON_TYPES = {1: "TYPE_FP32", 6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL"}
FP32 = TRITON_TYPES[1]
QUEUE_DELAY_US = 5000  # how long Triton's dynamic batcher waits to fill a batch


def model_names(name: str, with_plan: bool = False) -> dict[str, str]:
    """Triton model names from the artifact's name (letters, digits, '_' and '-')."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", name).strip("_") or "repmet"
    names = {"embedding": f"{base}_embedding", "head": f"{base}_head", "ensemble": base}
    if with_plan:
        names.update(embedding_trt=f"{base}_embedding_trt", ensemble_trt=f"{base}_trt")
    return names


def detector_model_names(name: str) -> dict[str, str]:
    base = model_names(name)["ensemble"]
    return {"detection": f"{base}_detection", "box_embedding": f"{base}_box_embedding"}


def write_repository(root: Path, name: str, embedding_onnx: Path, head_onnx: Path, input_shape: tuple[int, int, int],
                     dim: int, max_batch: int, embedding_plan: Path | None = None) -> dict[str, str]:
    """``embedding_plan``: the artifact's TensorRT engine of the embedding, when it has one (built with
    ``max_batch`` as its profile's largest batch): the plan variant is written too (module docstring)."""
    names = model_names(name, with_plan=embedding_plan is not None)
    c, h, w = input_shape
    batching = f"dynamic_batching {{\n  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n}}\n"
    embedding = {"inputs": [("images", [c, h, w], FP32)], "outputs": [("embeddings", [dim], FP32)], "extra": batching}
    ensemble = {"inputs": [("images", [-1, c, h, w], FP32), ("representatives", [-1, -1, dim], FP32)],
                "outputs": [("embeddings", [-1, dim], FP32), ("distances", [-1, -1, -1], FP32),
                            ("posteriors", [-1, -1], FP32)]}
    configs = {
        names["embedding"]: _config(names["embedding"], "onnxruntime_onnx", max_batch, **embedding),
        names["head"]: _config(names["head"], "onnxruntime_onnx", 0,
                               inputs=[("embeddings", [-1, dim], FP32), ("representatives", [-1, -1, dim], FP32)],
                               outputs=[("distances", [-1, -1, -1], FP32), ("posteriors", [-1, -1], FP32)]),
        names["ensemble"]: _config(names["ensemble"], "ensemble", 0, **ensemble,
                                   extra=_ensemble_steps(names["embedding"], names["head"])),
    }
    if embedding_plan is not None:
        configs[names["embedding_trt"]] = _config(names["embedding_trt"], "tensorrt_plan", max_batch, **embedding)
        configs[names["ensemble_trt"]] = _config(names["ensemble_trt"], "ensemble", 0, **ensemble,
                                                 extra=_ensemble_steps(names["embedding_trt"], names["head"]))
    for model, text in configs.items():
        (root / model / VERSION).mkdir(parents=True)
        (root / model / "config.pbtxt").write_text(text)
    shutil.copyfile(embedding_onnx, root / names["embedding"] / VERSION / "model.onnx")
    shutil.copyfile(head_onnx, root / names["head"] / VERSION / "model.onnx")
    if embedding_plan is not None:
        shutil.copyfile(embedding_plan, root / names["embedding_trt"] / VERSION / "model.plan")
    return names


def write_detector_repository(root: Path, name: str, detection_onnx: Path, box_embedding_onnx: Path) -> dict[str, str]:
    """The detector's two graphs as two unbatched ONNX Runtime models (module docstring)."""
    names = detector_model_names(name)
    for role, graph in (("detection", detection_onnx), ("box_embedding", box_embedding_onnx)):
        inputs, outputs = graph_tensors(graph)
        (root / names[role] / VERSION).mkdir(parents=True)
        (root / names[role] / "config.pbtxt").write_text(_config(names[role], "onnxruntime_onnx", 0, inputs, outputs))
        shutil.copyfile(graph, root / names[role] / VERSION / "model.onnx")
    return names


def graph_tensors(path: Path) -> tuple[list, list]:
    """``(inputs, outputs)`` of an ONNX graph as ``(name, dims, Triton type)``, -1 for a dynamic
    dimension, None for a type Triton's table here does not name."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}

    def described(values) -> list:
        rows = []
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            rows.append((value.name, dims, TRITON_TYPES.get(tensor.elem_type)))
        return rows

    return described(v for v in graph.input if v.name not in initializers), described(graph.output)


def _config(name: str, platform: str, max_batch: int, inputs, outputs, extra: str = "") -> str:
    def tensors(kind: str, items) -> str:
        rows = ",\n".join(f'  {{\n    name: "{n}"\n    data_type: {dtype}\n    dims: [ {", ".join(map(str, dims))} ]\n  }}'
                          for n, dims, dtype in items)
        return f"{kind} [\n{rows}\n]\n"

    return (f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch}\n'
            + tensors("input", inputs) + tensors("output", outputs) + extra)


def _ensemble_steps(embedding: str, head: str) -> str:
    def step(model: str, inputs: list[str], outputs: list[str]) -> str:
        maps = "".join(f'      input_map {{\n        key: "{t}"\n        value: "{t}"\n      }}\n' for t in inputs)
        maps += "".join(f'      output_map {{\n        key: "{t}"\n        value: "{t}"\n      }}\n' for t in outputs)
        return f'    {{\n      model_name: "{model}"\n      model_version: -1\n{maps}    }}'

    steps = ",\n".join([step(embedding, ["images"], ["embeddings"]),
                        step(head, ["embeddings", "representatives"], ["distances", "posteriors"])])
    return f"ensemble_scheduling {{\n  step [\n{steps}\n  ]\n}}\n"
