"""A trained model opened from its checkpoint, as evaluation, export and the eager runtime
backend all need it: the method, the resolved config, the model with its weights, and the
checkpoint's description (class names, preprocessing, gallery)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from repmet.checkpoint import load_checkpoint
from repmet.config import ExperimentConfig
from repmet.methods.config_loading import config_from_dict
from repmet.errors import UserError
from repmet.methods.base import Method, TrainedGallery
from repmet.methods.registry import get_method
from repmet.models import DistanceHead, EmbeddingNet
from repmet.preprocess_spec import PreprocessSpec


def describe(method: Method, config: ExperimentConfig, model: nn.Module, class_names: list[str]) -> dict[str, Any]:
    """The self-description every checkpoint carries (see ``repmet.checkpoint``)."""
    return {"method": method.name, "class_names": list(class_names),
            "preprocess": method.preprocess(config).to_dict(), "gallery": method.gallery(config, model).to_dict()}


@dataclass
class TrainedModel:
    path: str
    method: Method
    config: ExperimentConfig
    model: nn.Module  # on the CPU, in eval mode
    epoch: int
    class_names: list[str]
    preprocess: PreprocessSpec  # or the method's own preprocessing (the detector's)
    gallery: TrainedGallery

    def embedding_net(self) -> EmbeddingNet:
        return self.method.embedding_net(self.config, self.model).eval()

    def distance_head(self) -> DistanceHead:
        return DistanceHead(self.gallery.distance, self.gallery.sigma).eval()

    def description(self) -> dict[str, Any]:
        return {"method": self.method.name, "class_names": list(self.class_names),
                "preprocess": self.preprocess.to_dict(), "gallery": self.gallery.to_dict()}


def open_checkpoint(path: str | Path) -> TrainedModel:
    """Load ``path`` and rebuild its model; a version 1 checkpoint gets its description derived
    from its config and weights (what export used to reconstruct)."""
    bundle = load_checkpoint(path)
    config = config_from_dict(bundle["config"], source=f"the config stored in {path}")
    method = get_method(config.method, where=f"the config stored in {path}")
    class_names = [str(name) for name in bundle.get("class_names") or []]
    model = method.build_model(config, class_names, pretrained=False)
    try:
        model.load_state_dict(bundle["model"])
    except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
        detail = " ".join(str(exc).split())[:400]
        raise UserError(f"checkpoint {path} does not match the {config.model.name} {method.name} model its config "
                        f"describes ({detail}); the file was damaged or edited: use the original checkpoint") from None
    model.eval()
    description = {key: bundle[key] for key in ("preprocess", "gallery") if key in bundle}
    if len(description) < 2:
        description = describe(method, config, model, class_names)
    gallery = TrainedGallery.from_dict(description["gallery"])
    if len(class_names) != gallery.representatives.shape[0]:
        raise UserError(f"checkpoint {path}: {len(class_names)} class names for "
                        f"{gallery.representatives.shape[0]} classes of representatives; use the original checkpoint")
    return TrainedModel(str(path), method, config, model, int(bundle["epoch"]), class_names,
                        method.parse_preprocess(description["preprocess"]), gallery)
