"""What a method provides to the stages around it.

A :class:`Method` is registered once (``repmet.methods.registry``) and owns everything specific
to it: its config section, how its model is built (for training and from a checkpoint), its
gallery (representatives, sigma, K) and preprocessing (written into every checkpoint), its
evaluation, and the real images its exports are verified on. Batch-trained methods also provide
a :class:`BatchLearner`: the module that holds their state (RepMet representatives, Magnet
clusters) and their training step (sampler and loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from repmet.config import ExperimentConfig
from repmet.losses.base import BatchResult
from repmet.models.embedding_net import EmbeddingNet
from repmet.preprocess_spec import PreprocessSpec


@dataclass(frozen=True)
class TrainedGallery:
    """A trained model's gallery as checkpoints carry it: ``representatives [C, K, D]`` float32
    (C = 0 for methods that learn no classes), and the head's parameters."""

    representatives: torch.Tensor
    sigma: float
    distance: str
    normalized: bool  # whether embeddings are L2-normalised

    def to_dict(self) -> dict[str, Any]:
        return {"representatives": self.representatives.detach().float().cpu().contiguous(), "sigma": float(self.sigma),
                "distance": self.distance, "normalized": bool(self.normalized)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainedGallery":
        return cls(data["representatives"].float(), float(data["sigma"]), str(data["distance"]),
                   bool(data["normalized"]))


@dataclass(frozen=True)
class LabeledSample:
    """Real images of one split with their classes, prepared by the training pipeline: what an
    export's accuracy check (the int8 format's) and its calibration read."""

    images: np.ndarray  # [N, C, H, W] float32
    labels: np.ndarray  # [N] int, indices into class_names
    class_names: list[str]
    description: str


@dataclass(frozen=True)
class EvalRequest:
    """What ``metric-eval`` asks for; ``None`` takes the config's ``eval`` section."""

    split: str | None = None
    way: int | None = None
    shot: int | None = None
    query: int | None = None
    episodes: int | None = None
    seed: int | None = None
    device: torch.device = torch.device("cpu")
    progress: bool = True


class Method:
    name: ClassVar[str]
    trainer: ClassVar[str]  # which trainer runs it: "episodic" or "batch"
    task: ClassVar[str] = "classification"  # what its artifacts serve (metadata.json "task"; the runtime checks it)
    section: ClassVar[str | None] = None  # the config section it owns, e.g. "repmet"
    section_class: ClassVar[type | None] = None
    # keys of its section that only evaluation reads: a release may set them anew (repmet.train.release)
    evaluation_settings: ClassVar[tuple[str, ...]] = ()
    # how metric-eval evaluates it: a name in repmet.evaluate.registry.EVALUATIONS
    evaluation: ClassVar[str]

    def check_config(self, config: ExperimentConfig, source: str) -> None:
        """Refuse settings the method cannot run with (beyond types and ranges), naming the key."""

    def after_training(self, config: ExperimentConfig, model: nn.Module, training_set: Any, device: torch.device,
                       progress: bool) -> None:
        """What the last epoch ends with before its checkpoint is written (the detector fits its
        gallery here); nothing by default."""

    def build_model(self, config: ExperimentConfig, class_names: list[str], pretrained: bool = True) -> nn.Module:
        """The model a checkpoint's ``model`` state dict belongs to; ``pretrained=False`` when that
        state dict is about to be loaded into it."""
        raise NotImplementedError

    def embedding_net(self, config: ExperimentConfig, model: nn.Module) -> EmbeddingNet:
        """``images -> embeddings`` of a built model: the graph that export writes."""
        raise NotImplementedError

    def gallery(self, config: ExperimentConfig, model: nn.Module) -> TrainedGallery:
        raise NotImplementedError

    def preprocess(self, config: ExperimentConfig) -> PreprocessSpec:
        raise NotImplementedError

    def parse_preprocess(self, data: dict):
        """The preprocessing a checkpoint records, as written by :meth:`preprocess`."""
        return PreprocessSpec.from_dict(data)

    def summary(self, config: ExperimentConfig, result: dict[str, Any]) -> list[str]:
        """Lines that ``metric-eval`` prints for ``result``."""
        raise NotImplementedError

    def verification_images(self, config: ExperimentConfig, root: str | None, count: int) -> tuple[np.ndarray, str]:
        """``count`` real images of the checkpoint's test split, prepared by the training
        pipeline, for checking exports; and a description of them."""
        raise NotImplementedError

    def labeled_images(self, config: ExperimentConfig, root: str | None, split: str, count: int) -> LabeledSample:
        """About ``count`` labeled images of ``split`` spread over its classes, prepared by the training
        pipeline (an export's calibration and accuracy check)."""
        from repmet.errors import UserError

        raise UserError(f"the {self.name} method has no labeled classifier images to check an export's accuracy on")


class BatchLearner(nn.Module):
    """A batch method's trainable state (RepMet representatives) or buffers (Magnet clusters),
    its batch sampler, its loss, and how it classifies embeddings."""

    def prepare_training(self, train_labels: np.ndarray, config: ExperimentConfig, class_names: list[str],
                         description: str) -> None:
        """Check the training split against the method's settings and set up its sampler."""
        raise NotImplementedError

    def initialise(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Set up from the embedded training set before the first step."""
        raise NotImplementedError

    def sample(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices into the training split, per-index group ids the loss needs)``."""
        raise NotImplementedError

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> BatchResult:
        raise NotImplementedError

    def after_step(self, step: int, groups: np.ndarray, result: BatchResult, embed_train) -> None:
        """Bookkeeping after an optimizer step (Magnet: cluster losses and refreshes)."""

    def prepare_evaluation(self, embed_train) -> None:
        """Called before evaluating; ``embed_train()`` gives ``(embeddings, labels)`` of the
        training set for methods that need them (Magnet: fresh clusters)."""

    def log_posterior(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Closed-set class log-posteriors ``[B, C]``."""
        raise NotImplementedError

    def sampler_state(self) -> dict:
        return {}

    def load_sampler_state(self, state: dict) -> None:
        pass
