"""The method registry: a method's name (``method:`` in a config) -> the object that owns
everything specific to it. Nothing outside ``repmet/methods/`` tests a method's name; the
trainers, ``metric-eval``, ``metric-export`` and ``release`` ask the registry instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repmet.errors import UserError

if TYPE_CHECKING:
    from repmet.methods.base import Method

_METHODS: dict[str, "Method"] = {}


def register_method(method: "Method") -> "Method":
    if method.name in _METHODS:
        raise ValueError(f"method name {method.name!r} is registered twice")
    owners = {m.section: m.name for m in _METHODS.values() if m.section}
    if method.section and method.section in owners:
        raise ValueError(f"config section {method.section!r} of {method.name!r} is already owned by "
                         f"{owners[method.section]!r}")
    _METHODS[method.name] = method
    return method


def _load_builtin_methods() -> None:
    import repmet.methods  # noqa: F401  (its __init__ registers the built-in methods)


def available_methods() -> list[str]:
    _load_builtin_methods()
    return sorted(_METHODS)


def get_method(name: str, where: str = "method") -> "Method":
    _load_builtin_methods()
    if name not in _METHODS:
        raise UserError(f"{where}: unknown method {name!r}; available: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def method_sections() -> dict[str, type]:
    """Config sections owned by methods: section name -> its dataclass."""
    _load_builtin_methods()
    return {m.section: m.section_class for m in _METHODS.values() if m.section}
