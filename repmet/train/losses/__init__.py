"""Losses by name, so configs choose them and code never branches on names."""

from __future__ import annotations

from repmet.errors import UserError
from repmet.ops.distances import create_distance
from repmet.train.losses.base import EpisodeResult, EpisodicLoss
from repmet.train.losses.prototypical import PrototypicalLoss

_LOSSES = {"prototypical": PrototypicalLoss}


def create_loss(name: str, distance: str) -> EpisodicLoss:
    if name not in _LOSSES:
        raise UserError(f"unknown loss {name!r}; available: {', '.join(sorted(_LOSSES))}")
    return _LOSSES[name](create_distance(distance))


__all__ = ["EpisodeResult", "EpisodicLoss", "PrototypicalLoss", "create_loss"]
