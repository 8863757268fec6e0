"""The method registry: a method's name (``method:`` in a config) -> the object that owns
everything specific to it. Nothing outside ``repmet/methods/`` tests a method's name; the
trainers, ``metric-eval``, ``metric-export`` and ``release`` ask the registry instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repmet.registry import Registry

if TYPE_CHECKING:
    from repmet.methods.base import Method


def _load_builtin_methods() -> None:
    import repmet.methods  # noqa: F401  (its __init__ registers the built-in methods)


METHODS: "Registry[Method]" = Registry("method", _load_builtin_methods)


def register_method(method: "Method") -> "Method":
    if method.name in METHODS:
        raise ValueError(f"method name {method.name!r} is registered twice")
    owners = {m.section: name for name, m in METHODS.items() if m.section}
    if method.section and method.section in owners:
        raise ValueError(f"config section {method.section!r} of {method.name!r} is already owned by "
                         f"{owners[method.section]!r}")
    return METHODS.register(method.name, method)


def available_methods() -> list[str]:
    return METHODS.names()


def get_method(name: str, where: str = "method") -> "Method":
    return METHODS.get(name, where)


def method_sections() -> dict[str, type]:
    """Config sections owned by methods: section name -> its dataclass."""
    return {m.section: m.section_class for _, m in METHODS.items() if m.section}
