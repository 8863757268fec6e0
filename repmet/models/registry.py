"""A name -> constructor registry, so configs name models and code never branches on names."""

from __future__ import annotations

from typing import Callable

from torch import nn

from repmet.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's weights


def register_model(name: str, normalization: tuple[tuple[float, ...], tuple[float, ...]] = IMAGENET_NORMALIZATION
                   ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """``normalization``: the ``(mean, std)`` of [0, 1] RGB inputs that the model's pretrained
    weights were trained with."""
    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice")
        _MODELS[name] = factory
        _NORMALIZATION[name] = normalization
        return factory

    return decorator


def available_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model("conv4", in_channels=1)``."""
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _MODELS[name](**kwargs)


def input_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` that the pretrained weights of model ``name`` expect."""
    if name not in _NORMALIZATION:
        raise UserError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _NORMALIZATION[name]
