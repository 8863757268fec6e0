"""A name -> constructor registry, so configs name models and code never branches on names."""

from __future__ import annotations

from typing import Callable

from torch import nn

from repmet.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice")
        _MODELS[name] = factory
        return factory

    return decorator


def available_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model("conv4", in_channels=1)``."""
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _MODELS[name](**kwargs)
