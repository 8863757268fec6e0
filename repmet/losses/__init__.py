"""Losses by name, so configs choose them and code never branches on names."""

from __future__ import annotations

from repmet.ops.distances import create_distance
from repmet.losses.base import BatchResult, EpisodeResult, EpisodicLoss
from repmet.losses.magnet import MagnetLoss
from repmet.losses.prototypical import PrototypicalLoss
from repmet.losses.repmet_loss import RepMetLoss

from repmet.registry import Registry

# the episodic losses (loss.name); Magnet and RepMet are their methods' own (repmet.methods)
LOSSES: Registry[type[EpisodicLoss]] = Registry("loss")
LOSSES.register("prototypical", PrototypicalLoss)


def create_loss(name: str, distance: str) -> EpisodicLoss:
    return LOSSES.get(name)(create_distance(distance))


__all__ = ["BatchResult", "EpisodeResult", "EpisodicLoss", "MagnetLoss", "PrototypicalLoss", "RepMetLoss", "create_loss"]
