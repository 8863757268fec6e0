"""TorchScript: the embedding network traced (CNNs have no data-dependent control flow), the
distance head scripted (its class and representative counts are dynamic)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from repmet.export.input_guard import GuardedImageGraph, guarded
from repmet.models import DistanceHead, EmbeddingNet


def export_torchscript(embedding: EmbeddingNet, head: DistanceHead, example: torch.Tensor,
                       folder: Path) -> dict[str, str]:
    with torch.no_grad(), warnings.catch_warnings():
        # torch >= 2.10 marks torch.jit deprecated; TorchScript is still what C++ apps load
        # with libtorch, so it stays a format until torch removes it.
        warnings.simplefilter("ignore", FutureWarning)
        # A trace records cuDNN's TF32 switch as a constant of each convolution. Traced with it
        # off, the graph computes in full fp32 on every GPU, like the other backends (with it on,
        # CUDA embeddings differed from the CPU's by 1e-3 on an H200).
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            traced = torch.jit.trace(embedding.eval(), example, check_trace=False)
        traced = guarded(traced, GuardedImageGraph, example.shape[1:])
        traced.save(str(folder / "embedding.ts"))
        torch.jit.script(head.eval()).save(str(folder / "head.ts"))
    return {"embedding": "embedding.ts", "head": "head.ts"}
