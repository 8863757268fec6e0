"""AOTInductor: the embedding network and the distance head exported with ``torch.export`` and
compiled ahead of time to shared libraries (``embedding.pt2``, ``head.pt2``) that C++ loads
with ``torch::inductor::AOTIModelPackageLoader`` and Python with
``torch._inductor.aoti_load_package``, no Python interpreter or TorchScript involved: the
current PyTorch path for C++ deployment.

K, the representatives per class, is compiled in (it is fixed per artifact). A package runs
on the device it was compiled for (here the CPU; export on a GPU machine with
``--device cuda`` is not offered yet). The batch is dynamic (1..max_batch), and so are the
head's query and class counts. Compiling takes about a minute for a small network on 2 CPU
cores, several for EfficientNet-Lite0."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from repmet.export.formats.aoti.input_shapes import package_options
from repmet.models import DistanceHead, EmbeddingNet

MAX_QUERIES = 4096
MAX_CLASSES = 100_000


def export_aoti(embedding: EmbeddingNet, head: DistanceHead, example: torch.Tensor, folder: Path,
                max_batch: int, reps_per_class: int) -> dict:
    """K (``reps_per_class``) is fixed per artifact and compiled in; batch, queries and classes vary."""
    from torch._inductor import aoti_compile_and_package

    files = {"embedding": "embedding.pt2", "head": "head.pt2"}
    batch = torch.export.Dim("batch", min=1, max=max(max_batch, 2))
    queries = torch.export.Dim("queries", min=1, max=MAX_QUERIES)
    classes = torch.export.Dim("classes", min=1, max=MAX_CLASSES)
    example = example.cpu()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inductor's notes on the environment (no CUDA here, etc.)
        program = torch.export.export(embedding.eval().cpu(), (example,), dynamic_shapes=({0: batch},))
        aoti_compile_and_package(program, package_path=str(folder / files["embedding"]),
                                 inductor_configs=package_options(program))
        embeddings = embedding(example)
        # 3 classes: a size of 1 would be specialised into the program
        representatives = embeddings[:1, None, :].expand(3, reps_per_class, -1).contiguous()
        program = torch.export.export(head.eval().cpu(), (embeddings, representatives),
                                      dynamic_shapes=({0: queries}, {0: classes}))
        aoti_compile_and_package(program, package_path=str(folder / files["head"]), inductor_configs=package_options(program))
    return {**files, "device": "cpu", "max_batch": max(max_batch, 2)}

