"""Episodic evaluation: mean accuracy over seeded episodes with its 95% confidence interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from repmet.data import load_few_shot_split
from repmet.data.class_images import ClassImages
from repmet.evaluate.confidence import mean_and_ci95
from repmet.data.episode_sampler import Episode, EpisodeSampler, gather_episode
from repmet.evaluate.registry import EVALUATIONS
from repmet.losses import create_loss
from repmet.losses.base import EpisodeResult, EpisodicLoss


def run_episode(encoder: nn.Module, loss_fn: EpisodicLoss, data: ClassImages, episode: Episode,
                device: torch.device, memory_format: torch.memory_format = torch.contiguous_format) -> EpisodeResult:
    """Embed support and queries in one batch (BatchNorm sees the whole episode, as in
    the reference code), split them back, and score the queries. Shared by training and evaluation."""
    images = gather_episode(data.images, episode, device, memory_format)
    way, n = episode.images.shape
    embeddings = encoder(images).view(way, n, -1)
    return loss_fn(embeddings[:, : episode.shot], embeddings[:, episode.shot:])


@dataclass(frozen=True)
class EpisodicScore:
    accuracy: float  # mean over episodes, a fraction
    ci95: float  # 1.96 * sample std / sqrt(episodes)
    loss: float
    per_episode: list[float]

    @property
    def episodes(self) -> int:
        return len(self.per_episode)


@torch.no_grad()
def evaluate_episodes(encoder: nn.Module, loss_fn: EpisodicLoss, data: ClassImages, way: int, shot: int,
                      query: int, episodes: int, seed: int, device: torch.device,
                      memory_format: torch.memory_format = torch.contiguous_format,
                      progress: bool = False) -> EpisodicScore:
    sampler = EpisodeSampler(data.num_classes, data.images_per_class, way, shot, query, episodes, seed,
                             description=data.description)
    was_training = encoder.training
    encoder.eval()
    accuracies, losses = [], []
    for index in tqdm(range(episodes), desc=f"eval {way}-way {shot}-shot", disable=not progress, leave=False):
        result = run_episode(encoder, loss_fn, data, sampler.episode(0, index), device, memory_format)
        accuracies.append(result.accuracy.item())
        losses.append(result.loss.item())
    encoder.train(was_training)
    accuracy, ci95 = mean_and_ci95(accuracies)
    return EpisodicScore(accuracy, ci95, float(np.mean(losses)), accuracies)


@EVALUATIONS.register("episodes")
def evaluate_episodic_method(trained, request) -> dict[str, Any]:
    """metric-eval of a Prototypical Network: N-way K-shot episodes of the test split's classes."""
    config, e, d = trained.config, trained.config.eval, trained.config.data
    split = request.split or d.test_split
    way, shot, query = request.way or e.way, request.shot or e.shot, request.query or e.query
    episodes = request.episodes or e.test_episodes
    seed = e.seed if request.seed is None else request.seed
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    encoder = trained.model.to(request.device, memory_format=memory_format)
    data = load_few_shot_split(d.dataset, split, d.root, d.image_size, d.download)
    score = evaluate_episodes(encoder, create_loss(config.loss.name, config.loss.distance), data, way, shot, query,
                              episodes, seed, request.device, memory_format, progress=request.progress)
    return {"accuracy": score.accuracy, "ci95": score.ci95, "episodes": episodes, "way": way, "shot": shot,
            "query": query, "split": split, "seed": seed, "description": data.description}
