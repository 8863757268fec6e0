"""Prototypical Networks (Snell, Swersky and Zemel, NeurIPS 2017): a conv4 encoder trained on
episodes; a class is the mean of its support embeddings. Trained by the episodic trainer
with :class:`repmet.losses.PrototypicalLoss`; learns no classes, so its gallery is empty."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from repmet.config import ExperimentConfig
from repmet.data import few_shot_preprocess, load_few_shot_split
from repmet.methods.base import LabeledSample, Method, TrainedGallery
from repmet.methods.registry import register_method
from repmet.models import EmbeddingNet, build_backbone
from repmet.ops.posterior import PROTOTYPICAL_SIGMA
from repmet.preprocess_spec import PreprocessSpec


class PrototypicalNetworks(Method):
    evaluation = "episodes"
    name = "protonets"
    trainer = "episodic"

    def build_model(self, config: ExperimentConfig, class_names: list[str], pretrained: bool = True) -> nn.Module:
        return build_backbone(config.model, pretrained)

    def embedding_net(self, config: ExperimentConfig, model: nn.Module) -> EmbeddingNet:
        return EmbeddingNet(model).eval()  # not normalised: trained on raw squared distances

    def gallery(self, config: ExperimentConfig, model: nn.Module) -> TrainedGallery:
        size = config.data.image_size
        was_training = model.training
        model.eval()
        with torch.no_grad():
            probe = torch.zeros(1, config.model.in_channels, size, size, device=next(model.parameters()).device)
            dim = model(probe).shape[1]
        model.train(was_training)
        return TrainedGallery(torch.zeros(0, 1, dim), PROTOTYPICAL_SIGMA, config.loss.distance, normalized=False)

    def preprocess(self, config: ExperimentConfig) -> PreprocessSpec:
        return few_shot_preprocess(config.data.dataset, config.data.image_size)

    def summary(self, config: ExperimentConfig, result: dict[str, Any]) -> list[str]:
        return [f"{config.name} on {result['description']}: {result['way']}-way {result['shot']}-shot, "
                f"{result['query']} queries, {result['episodes']} episodes: accuracy {100 * result['accuracy']:.2f} "
                f"+- {100 * result['ci95']:.2f} %"]

    def verification_images(self, config: ExperimentConfig, root: str | None, count: int) -> tuple[np.ndarray, str]:
        d = config.data
        data = load_few_shot_split(d.dataset, d.test_split, root, d.image_size, download=False)
        classes = np.linspace(0, data.num_classes - 1, count).round().astype(int)
        batch = data.images[torch.from_numpy(classes), 0].float().div(255.0)
        return batch.numpy(), f"{count} images of {data.description}"

    def labeled_images(self, config: ExperimentConfig, root: str | None, split: str, count: int) -> LabeledSample:
        d = config.data
        data = load_few_shot_split(d.dataset, split, root, d.image_size, download=False)
        per_class = data.images.shape[1]  # every image of a class: episodes draw shots and queries from them
        wanted = min(data.num_classes, max(config.eval.way, count // per_class))
        classes = np.unique(np.linspace(0, data.num_classes - 1, wanted).round().astype(int))
        batch = data.images[torch.from_numpy(classes)].flatten(0, 1).float().div(255.0)
        return LabeledSample(batch.numpy(), np.repeat(np.arange(len(classes)), per_class),
                             [data.class_names[c] for c in classes],
                             f"{len(batch)} images ({len(classes)} classes) of {data.description}")


register_method(PrototypicalNetworks())
