"""Continuing a run: the model, optimizer, scheduler and torch RNG as ``last.pt`` left them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from repmet.checkpoint import load_checkpoint, require_resumable


def restore_training_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                           scheduler) -> dict[str, Any]:
    """Load ``path`` into the training objects; returns the bundle for what else a trainer keeps."""
    bundle = load_checkpoint(path)
    require_resumable(bundle, path)
    model.load_state_dict(bundle["model"])
    optimizer.load_state_dict(bundle["optimizer"])
    scheduler.load_state_dict(bundle["scheduler"])
    torch.set_rng_state(bundle["torch_rng"])
    return bundle
