"""A trained checkpoint -> what an artifact is made of: the embedding graph, the distance head,
the trained gallery and the preprocessing, all taken from the checkpoint's own description."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from repmet.methods import TrainedModel, open_checkpoint
from repmet.models import DistanceHead, EmbeddingNet
from repmet.preprocess_spec import PreprocessSpec
from repmet.runtime.gallery import Gallery


@dataclass
class ExportableModel:
    trained: TrainedModel
    embedding: EmbeddingNet  # eval mode, on CPU
    head: DistanceHead
    gallery: Gallery  # trained representatives (empty for Prototypical Networks)
    fingerprint: str  # of the embedding: weights, preprocessing, dim, normalisation, distance

    @property
    def config(self):
        return self.trained.config

    @property
    def preprocess(self) -> PreprocessSpec:
        return self.trained.preprocess

    @property
    def sigma(self) -> float:
        return self.trained.gallery.sigma

    @property
    def normalized(self) -> bool:
        return self.trained.gallery.normalized

    @property
    def distance(self) -> str:
        return self.trained.gallery.distance

    @property
    def embedding_dim(self) -> int:
        return self.gallery.embedding_dim

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.preprocess.channels, self.preprocess.crop, self.preprocess.crop)


def embedding_fingerprint(embedding: torch.nn.Module, preprocess: PreprocessSpec, dim: int, normalized: bool,
                          distance: str) -> str:
    """sha256 of everything that decides which space an embedding lives in: a gallery made
    with one fingerprint is meaningless to a model with another, whatever its size."""
    digest = hashlib.sha256(json.dumps({"preprocess": preprocess.to_dict(), "dim": dim, "normalized": normalized,
                                        "distance": distance}, sort_keys=True).encode())
    for key, tensor in sorted(embedding.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().numpy().tobytes())
    return digest.hexdigest()


def load_exportable(checkpoint: str) -> ExportableModel:
    return exportable_from(open_checkpoint(checkpoint))


def exportable_from(trained: TrainedModel) -> ExportableModel:
    embedding = trained.embedding_net()
    reps = trained.gallery.representatives.numpy().astype(np.float32)
    g = trained.gallery
    fingerprint = embedding_fingerprint(embedding, trained.preprocess, reps.shape[2], g.normalized, g.distance)
    gallery = Gallery(tuple(trained.class_names), reps, np.full(len(reps), reps.shape[1], np.int64), fingerprint)
    return ExportableModel(trained, embedding, trained.distance_head(), gallery, fingerprint)
