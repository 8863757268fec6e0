"""A Triton Inference Server model repository for a classifier: the embedding network (ONNX Runtime
backend, dynamic batching), the distance head with the representatives as an input, and an
ensemble that chains them, so one request (images + the gallery's representatives) returns
embeddings, distances and posteriors.

    REPO/NAME_embedding/config.pbtxt    platform onnxruntime_onnx, max_batch_size B, dynamic batching
    REPO/NAME_embedding/1/model.onnx    the artifact's embedding.onnx
    REPO/NAME_head/config.pbtxt         max_batch_size 0: the representatives [C, K, D] have no batch dimension
    REPO/NAME_head/1/model.onnx         the artifact's head.onnx
    REPO/NAME/config.pbtxt              platform ensemble, max_batch_size 0 (its head does not batch)
    REPO/NAME/1/                        empty: an ensemble has no model file, but Triton wants a version

The configs are written as protobuf text by hand (no protobuf needed to export); ``check.py``
parses them back into Triton's own ``ModelConfig`` message when ``tritonclient`` is installed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

VERSION = "1"
QUEUE_DELAY_US = 5000  # how long Triton's dynamic batcher waits to fill a batch


def model_names(name: str) -> dict[str, str]:
    """Triton model names from the artifact's name (letters, digits, '_' and '-')."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", name).strip("_") or "repmet"
    return {"embedding": f"{base}_embedding", "head": f"{base}_head", "ensemble": base}


def write_repository(root: Path, name: str, embedding_onnx: Path, head_onnx: Path, input_shape: tuple[int, int, int],
                     dim: int, max_batch: int) -> dict[str, str]:
    names = model_names(name)
    c, h, w = input_shape
    configs = {
        names["embedding"]: _config(names["embedding"], "onnxruntime_onnx", max_batch,
                                    inputs=[("images", [c, h, w])], outputs=[("embeddings", [dim])],
                                    extra=f"dynamic_batching {{\n  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n}}\n"),
        names["head"]: _config(names["head"], "onnxruntime_onnx", 0,
                               inputs=[("embeddings", [-1, dim]), ("representatives", [-1, -1, dim])],
                               outputs=[("distances", [-1, -1, -1]), ("posteriors", [-1, -1])]),
        names["ensemble"]: _config(names["ensemble"], "ensemble", 0,
                                   inputs=[("images", [-1, c, h, w]), ("representatives", [-1, -1, dim])],
                                   outputs=[("embeddings", [-1, dim]), ("distances", [-1, -1, -1]),
                                            ("posteriors", [-1, -1])],
                                   extra=_ensemble_steps(names)),
    }
    for model, text in configs.items():
        (root / model / VERSION).mkdir(parents=True)
        (root / model / "config.pbtxt").write_text(text)
    shutil.copyfile(embedding_onnx, root / names["embedding"] / VERSION / "model.onnx")
    shutil.copyfile(head_onnx, root / names["head"] / VERSION / "model.onnx")
    return names


def _config(name: str, platform: str, max_batch: int, inputs, outputs, extra: str = "") -> str:
    def tensors(kind: str, items) -> str:
        rows = ",\n".join(f'  {{\n    name: "{n}"\n    data_type: TYPE_FP32\n    dims: [ {", ".join(map(str, dims))} ]\n  }}'
                          for n, dims in items)
        return f"{kind} [\n{rows}\n]\n"

    return (f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch}\n'
            + tensors("input", inputs) + tensors("output", outputs) + extra)


def _ensemble_steps(names: dict[str, str]) -> str:
    def step(model: str, inputs: list[str], outputs: list[str]) -> str:
        maps = "".join(f'      input_map {{\n        key: "{t}"\n        value: "{t}"\n      }}\n' for t in inputs)
        maps += "".join(f'      output_map {{\n        key: "{t}"\n        value: "{t}"\n      }}\n' for t in outputs)
        return f'    {{\n      model_name: "{model}"\n      model_version: -1\n{maps}    }}'

    steps = ",\n".join([step(names["embedding"], ["images"], ["embeddings"]),
                        step(names["head"], ["embeddings", "representatives"], ["distances", "posteriors"])])
    return f"ensemble_scheduling {{\n  step [\n{steps}\n  ]\n}}\n"
