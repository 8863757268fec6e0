"""A trained checkpoint -> what an artifact is made of: the embedding graph, the distance head,
the trained gallery and the preprocessing, all taken from the checkpoint's own description."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repmet.methods import TrainedModel, open_checkpoint
from repmet.models import DistanceHead, EmbeddingNet
from repmet.preprocess_spec import PreprocessSpec
from repmet.artifact.gallery_file import Gallery


@dataclass
class ExportableModel:
    trained: TrainedModel
    embedding: EmbeddingNet  # eval mode, on CPU
    head: DistanceHead
    # trained representatives (empty for Prototypical Networks), with PENDING_FINGERPRINT: the
    # fingerprint is of the exported files, see add_fingerprint_and_gallery
    gallery: Gallery

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


# What a gallery carries until the artifact's files exist: the fingerprint is computed from them
# (repmet.artifact.fingerprint), so no gallery holding this is ever written.
PENDING_FINGERPRINT = "0" * 64


def load_exportable(checkpoint: str) -> ExportableModel:
    return exportable_from(open_checkpoint(checkpoint))


def exportable_from(trained: TrainedModel) -> ExportableModel:
    embedding = trained.embedding_net()
    reps = trained.gallery.representatives.numpy().astype(np.float32)
    gallery = Gallery(tuple(trained.class_names), reps, np.full(len(reps), reps.shape[1], np.int64),
                      PENDING_FINGERPRINT)
    return ExportableModel(trained, embedding, trained.distance_head(), gallery)
