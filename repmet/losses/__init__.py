"""Losses by name, so configs choose them and code never branches on names."""

from __future__ import annotations

from repmet.errors import UserError
from repmet.ops.distances import create_distance
from repmet.losses.base import BatchResult, EpisodeResult, EpisodicLoss
from repmet.losses.magnet import MagnetLoss
from repmet.losses.prototypical import PrototypicalLoss
from repmet.losses.repmet import RepMetLoss

_LOSSES = {"prototypical": PrototypicalLoss}


def create_loss(name: str, distance: str) -> EpisodicLoss:
    if name not in _LOSSES:
        raise UserError(f"unknown loss {name!r}; available: {', '.join(sorted(_LOSSES))}")
    return _LOSSES[name](create_distance(distance))


__all__ = ["BatchResult", "EpisodeResult", "EpisodicLoss", "MagnetLoss", "PrototypicalLoss", "RepMetLoss", "create_loss"]
