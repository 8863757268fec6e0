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
