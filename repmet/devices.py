"""Device names from configs and command lines -> ``torch.device``, with a sentence when CUDA is missing."""

from __future__ import annotations

import torch

from repmet.errors import UserError


def resolve_device(name: str, local_rank: int = 0, option: str = "train.device") -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if not (name == "cpu" or name == "cuda" or name.startswith("cuda:")):
        raise UserError(f"{option} is {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"{option} is {name!r} but no CUDA device is available; use 'auto' or 'cpu'")
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    return torch.device(name)


def flush_denormals() -> None:
    """Treat denormal floats as zero on the CPU. As a head's loss nears zero its gradients, Adam's
    moments and then some weights fall below 1e-38, where x86 arithmetic is about ten times
    slower (measured: a RepMet head's training step 620 ms -> 63 ms); the values lost are far
    below anything a model computes with."""
    torch.set_flush_denormal(True)
