"""One episode through an encoder and an episodic loss, shared by training and evaluation."""

from __future__ import annotations

import torch
from torch import nn

from repmet.data.class_images import ClassImages
from repmet.data.episode_sampler import Episode, gather_episode
from repmet.train.losses.base import EpisodeResult, EpisodicLoss


def run_episode(encoder: nn.Module, loss_fn: EpisodicLoss, data: ClassImages, episode: Episode,
                device: torch.device, memory_format: torch.memory_format = torch.contiguous_format) -> EpisodeResult:
    """Embed support and queries in one batch (BatchNorm sees the whole episode, as in
    the reference code), split them back, and score the queries."""
    images = gather_episode(data.images, episode, device, memory_format)
    way, n = episode.images.shape
    embeddings = encoder(images).view(way, n, -1)
    return loss_fn(embeddings[:, : episode.shot], embeddings[:, episode.shot:])
