"""The model registry (``model.name`` in a config), on :class:`repmet.registry.Registry`: a name ->
its constructor and the input normalisation its pretrained weights expect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from repmet.registry import Registry

IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's weights


@dataclass(frozen=True)
class RegisteredModel:
    factory: Callable[..., nn.Module]
    normalization: tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std) of [0, 1] RGB inputs


MODELS: Registry[RegisteredModel] = Registry("model")


def register_model(name: str, normalization: tuple[tuple[float, ...], tuple[float, ...]] = IMAGENET_NORMALIZATION
                   ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """``normalization``: the ``(mean, std)`` of [0, 1] RGB inputs that the model's pretrained
    weights were trained with."""
    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.register(name, RegisteredModel(factory, normalization))
        return factory

    return decorator


def available_models() -> list[str]:
    return MODELS.names()


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model("conv4", in_channels=1)``."""
    return MODELS.get(name).factory(**kwargs)


def input_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` that the pretrained weights of model ``name`` expect."""
    return MODELS.get(name).normalization
