"""Optimizer and learning-rate schedule from the ``train`` section, shared by both trainers."""

from __future__ import annotations

from typing import Iterable

import math
from pathlib import Path

import torch

from repmet.config import TrainConfig
from repmet.errors import UserError


def build_optimizer(parameters: Iterable[torch.nn.Parameter], train: TrainConfig,
                    backbone_parameters: Iterable[torch.nn.Parameter] = ()) -> torch.optim.Optimizer:
    """The trainable ``parameters`` at ``train.lr``; those also in ``backbone_parameters`` (a
    pretrained backbone being fine-tuned) at ``train.lr x train.backbone_lr_scale``."""
    in_backbone = {id(p) for p in backbone_parameters}
    trainable = [p for p in parameters if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in in_backbone], "lr": train.lr},
              {"params": [p for p in trainable if id(p) in in_backbone], "lr": train.lr * train.backbone_lr_scale}]
    groups = [g for g in groups if g["params"]]
    if train.optimizer == "adam":
        return torch.optim.Adam(groups, lr=train.lr, weight_decay=train.weight_decay)
    return torch.optim.SGD(groups, lr=train.lr, momentum=0.9, weight_decay=train.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig, units_per_step: int = 1):
    """Multiply the rate by ``lr_decay_factor`` every ``lr_decay_every`` units (episodes or
    steps); the scheduler is stepped once per optimizer step of ``units_per_step`` units."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=train.lr_decay_every // units_per_step,
                                           gamma=train.lr_decay_factor)


def require_finite_loss(value: float, epoch: int, step: int, out_dir: Path) -> None:
    """Stop a diverged run before it writes NaN weights: the checkpoints on disk stay the last good ones."""
    if not math.isfinite(value):
        raise UserError(f"training diverged: the loss is {value} at epoch {epoch + 1}, step {step + 1}; nothing of "
                        f"this epoch was saved, and {Path(out_dir) / 'checkpoints'} keeps the last good epoch. Lower "
                        f"train.lr and resume with --resume, or start again with --overwrite")
