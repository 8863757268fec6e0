"""What RepMet and Magnet Loss share: a backbone + embedding head trained on batches of an
image-classification dataset, with a learner that classifies embeddings; evaluated by
closed-set accuracy, retrieval metrics and few-shot episodes on held-out classes."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from repmet.config import ExperimentConfig
from repmet.data import load_labeled_classes
from repmet.data.transforms import TransformSpec
from repmet.imaging import open_rgb
from repmet.methods.base import BatchLearner, LabeledSample, Method
from repmet.models import EmbeddingNet, FineGrainedModel, build_fine_grained_model, input_normalization
from repmet.models.registry import IMAGENET_NORMALIZATION
from repmet.preprocess_spec import PreprocessSpec


def transform_spec(config: ExperimentConfig) -> TransformSpec:
    d = config.data
    mean, std = input_normalization(config.model.name) if d.normalization == "backbone" else IMAGENET_NORMALIZATION
    return TransformSpec(d.image_size, d.resize or round(d.image_size / 0.875), mean, std)


class FineGrainedMethod(Method):
    trainer = "batch"
    evaluation = "fine_grained"

    def create_learner(self, config: ExperimentConfig, num_classes: int) -> BatchLearner:
        raise NotImplementedError

    def reps_per_class(self, config: ExperimentConfig) -> int:
        raise NotImplementedError

    def build_model(self, config: ExperimentConfig, class_names: list[str], pretrained: bool = True) -> FineGrainedModel:
        return build_fine_grained_model(config, self.create_learner(config, len(class_names)), pretrained)

    def embedding_net(self, config: ExperimentConfig, model: nn.Module) -> EmbeddingNet:
        # Inception-V3 returns plain features in eval mode; the head L2-normalises.
        return EmbeddingNet(model.backbone, model.head).eval()

    def preprocess(self, config: ExperimentConfig) -> PreprocessSpec:
        return transform_spec(config).preprocess_spec()

    def summary(self, config: ExperimentConfig, result: dict[str, Any]) -> list[str]:
        lines = [f"{config.name} on {result['split']}: closed-set accuracy {100 * result['accuracy']:.2f} % over "
                 f"{result['images']} images of {result['classes']} classes; precision@1 "
                 f"{100 * result['precision_at_1']:.2f} %, MAP@R {100 * result['map_at_r']:.2f} %"]
        for few in result["fewshot"]:
            lines.append(f"  few-shot on held-out classes {few['classes'][0]}-{few['classes'][1]}: {few['way']}-way "
                         f"{few['shot']}-shot, {few['episodes']} episodes: {100 * few['accuracy']:.2f} +- "
                         f"{100 * few['ci95']:.2f} %")
        return lines

    def verification_images(self, config: ExperimentConfig, root: str | None, count: int) -> tuple[np.ndarray, str]:
        d = config.data
        data = load_labeled_classes(_with_root(d, root), d.test_split)
        picks = np.linspace(0, len(data.paths) - 1, count).round().astype(int)
        transform = transform_spec(config).eval_transform()
        batch = torch.stack([transform(open_rgb(data.paths[i])) for i in picks])
        return batch.numpy(), f"{count} images of {data.description}"

    def labeled_images(self, config: ExperimentConfig, root: str | None, split: str, count: int) -> LabeledSample:
        data = load_labeled_classes(_with_root(config.data, root), split)
        picks = np.unique(np.linspace(0, len(data.paths) - 1, min(count, len(data.paths))).round().astype(int))
        transform = transform_spec(config).eval_transform()
        batch = torch.stack([transform(open_rgb(data.paths[i])) for i in picks])
        return LabeledSample(batch.numpy(), np.asarray(data.labels)[picks], list(data.class_names),
                             f"{len(picks)} images of {data.description}")


def _with_root(data, root: str | None):
    """The data section reading from ``root`` (when given), never downloading: verification
    needs images that are here."""
    return dataclasses.replace(data, root=root or data.root, download=False)
