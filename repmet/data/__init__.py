"""Datasets in their official layouts, by name."""

from __future__ import annotations

from pathlib import Path

from repmet.data.class_images import ClassImages
from repmet.data.episode_sampler import Episode, EpisodeSampler, gather_episode
from repmet.data.omniglot import load_omniglot
from repmet.data.paths import default_data_root
from repmet.errors import UserError

_FEW_SHOT_DATASETS = {"omniglot": load_omniglot}


def load_few_shot_split(dataset: str, split: str, root: str | Path | None = None,
                        image_size: int = 28, download: bool = True) -> ClassImages:
    if dataset not in _FEW_SHOT_DATASETS:
        raise UserError(f"unknown few-shot dataset {dataset!r}; available: {', '.join(sorted(_FEW_SHOT_DATASETS))}")
    return _FEW_SHOT_DATASETS[dataset](root or default_data_root(), split, image_size=image_size, download=download)


__all__ = ["ClassImages", "Episode", "EpisodeSampler", "default_data_root", "gather_episode",
           "load_few_shot_split", "load_omniglot"]
