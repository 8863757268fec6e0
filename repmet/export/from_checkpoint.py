"""A training checkpoint -> the modules, gallery and metadata an artifact is made of."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from repmet.errors import UserError
from repmet.export.modules import DistanceHead, EmbeddingNet
from repmet.models import EmbeddingHead, create_model
from repmet.runtime.gallery import Gallery
from repmet.runtime.preprocess import PreprocessSpec
from repmet.train.batch_trainer import transform_spec
from repmet.train.checkpoint import load_checkpoint
from repmet.train.config import ExperimentConfig, config_from_dict
from repmet.train.trainer import build_encoder


@dataclass
class ExportableModel:
    config: ExperimentConfig
    embedding: EmbeddingNet  # eval mode, on CPU
    head: DistanceHead
    sigma: float
    normalized: bool
    gallery: Gallery  # trained representatives (empty for Prototypical Networks)
    preprocess: PreprocessSpec
    state: dict  # the checkpoint's model state dict, for the eager torch backend

    @property
    def embedding_dim(self) -> int:
        return self.gallery.embedding_dim

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.preprocess.channels, self.preprocess.crop, self.preprocess.crop)


def load_exportable(checkpoint: str) -> ExportableModel:
    bundle = load_checkpoint(checkpoint)
    config = config_from_dict(bundle["config"], source=f"the config stored in {checkpoint}")
    state = bundle["model"]
    if config.method == "protonets":
        model = _protonets(config, state)
    else:
        model = _fine_grained(config, state, bundle.get("class_names"), checkpoint)
    model.embedding.eval()
    return model


def _protonets(config: ExperimentConfig, state: dict) -> ExportableModel:
    encoder = build_encoder(config)
    encoder.load_state_dict(state)
    d = config.data
    preprocess = PreprocessSpec(color="L", resize="exact", resize_to=d.image_size, interpolation="lanczos",
                                crop=d.image_size, invert=True, mean=(0.0,) * config.model.in_channels,
                                std=(1.0,) * config.model.in_channels)
    embedding = EmbeddingNet(encoder).eval()
    with torch.no_grad():
        dim = embedding(torch.zeros(1, config.model.in_channels, d.image_size, d.image_size)).shape[1]
    sigma = math.sqrt(0.5)  # softmax(-d) of the Prototypical loss is exp(-d / (2 sigma^2)) with sigma^2 = 1/2
    return ExportableModel(config, embedding, DistanceHead(config.loss.distance, sigma), sigma, False,
                           Gallery.empty(1, dim), preprocess, state)


def _fine_grained(config: ExperimentConfig, state: dict, class_names: list[str] | None,
                  checkpoint: str) -> ExportableModel:
    m, h = config.model, config.head
    backbone = create_model(m.name, pretrained=False, weights=None)
    prefix = "backbone.backbone." if any(k.startswith("backbone.backbone.") for k in state) else "backbone."
    backbone.load_state_dict(_section(state, prefix))
    head = EmbeddingHead(backbone.feature_dim, h.hidden_dim, h.embedding_dim, h.dropout)
    head.load_state_dict(_section(state, "head."))
    if config.method == "repmet":
        k, sigma = config.repmet.reps_per_class, config.repmet.sigma
        reps = state["method.head.representatives"]
    elif config.method == "magnet":
        k = config.magnet.clusters_per_class
        reps = state["method.centers"]
        sigma = math.sqrt(float(state["method.variance"]))  # Magnet's exp(-d / (2 var)) is sigma^2 = var
    else:
        raise UserError(f"{checkpoint}: method {config.method!r} cannot be exported")
    reps = reps.detach().float().reshape(-1, k, h.embedding_dim).numpy()
    names = list(class_names) if class_names else [str(i) for i in range(len(reps))]
    if len(names) != len(reps):
        raise UserError(f"{checkpoint}: {len(names)} class names for {len(reps)} classes of representatives")
    gallery = Gallery(tuple(names), reps.astype(np.float32), np.full(len(names), k, np.int64))
    spec = transform_spec(config)  # the training evaluation transform: Resize(int) is torchvision's bilinear
    preprocess = PreprocessSpec(color="RGB", resize="shorter_side", resize_to=spec.resize, interpolation="bilinear",
                                crop=spec.size, invert=False, mean=spec.mean, std=spec.std)
    embedding = EmbeddingNet(backbone, head).eval()  # Inception-V3 returns plain features in eval mode
    return ExportableModel(config, embedding, DistanceHead(config.loss.distance, sigma), sigma, True, gallery,
                           preprocess, state)


def _section(state: dict, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
