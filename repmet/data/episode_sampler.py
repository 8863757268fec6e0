"""Seeded n-way k-shot episodes over a split held in memory.

Episode ``i`` of epoch ``e`` is drawn from its own generator seeded by
``(seed, e, i)``, so any episode can be regenerated without replaying the ones before
it: a resumed run and every rank of a distributed run see the same episode stream,
and there is no sampler state to save.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from repmet.errors import UserError


@dataclass(frozen=True)
class Episode:
    """``classes [way]`` rows of the split; ``images [way, shot + query]`` images of each
    (the first ``shot`` columns are the support set, the rest the queries)."""

    classes: np.ndarray
    images: np.ndarray
    shot: int


class EpisodeSampler:
    def __init__(
        self,
        num_classes: int,
        images_per_class: int,
        way: int,
        shot: int,
        query: int,
        episodes_per_epoch: int,
        seed: int,
        description: str = "the split",
    ) -> None:
        for name, value in (("way", way), ("shot", shot), ("query", query), ("episodes", episodes_per_epoch)):
            if value < 1:
                raise UserError(f"episode {name} must be at least 1, got {value}")
        if way > num_classes:
            raise UserError(f"a {way}-way episode needs {way} classes but {description} has {num_classes}; lower the way")
        if shot + query > images_per_class:
            raise UserError(
                f"an episode needs shot + query = {shot} + {query} = {shot + query} images per class, "
                f"but the classes of {description} have {images_per_class}; lower shot or query"
            )
        self.num_classes = num_classes
        self.images_per_class = images_per_class
        self.way, self.shot, self.query = way, shot, query
        self.episodes_per_epoch = episodes_per_epoch
        self.seed = seed

    def episode(self, epoch: int, index: int) -> Episode:
        rng = np.random.default_rng([self.seed, epoch, index])
        classes = rng.choice(self.num_classes, size=self.way, replace=False)
        order = rng.random((self.way, self.images_per_class)).argsort(axis=1)
        return Episode(classes, order[:, : self.shot + self.query], self.shot)

    def __len__(self) -> int:
        return self.episodes_per_epoch


def gather_episode(images: torch.Tensor, episode: Episode, device: torch.device,
                   memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """The episode's images as one float batch ``[way * (shot + query), C, H, W]`` in [0, 1],
    class-major (all images of the first class, then the second, ...)."""
    rows = torch.from_numpy(episode.classes)[:, None]
    cols = torch.from_numpy(episode.images)
    batch = images[rows, cols].flatten(0, 1).to(device, non_blocking=True)
    return batch.float().div_(255.0).contiguous(memory_format=memory_format)
