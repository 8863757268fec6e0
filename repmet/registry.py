"""One registry helper for every "name in a config -> the thing it names" table (models,
detection backbones, methods, losses, distances), in the style of torchvision's
``register_model`` / ``get_model`` / ``list_models``: code asks a registry instead of branching
on a name, and an unknown name is a sentence listing the known ones. Standard library only."""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

from repmet.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind`` names the entries in messages ("model", "method", ...); ``load_builtins``, when
    given, imports the modules that register the built-in entries, on first lookup (so importing
    the registry never imports them)."""

    def __init__(self, kind: str, load_builtins: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._load_builtins = load_builtins

    def register(self, name: str, entry: T | None = None):
        """``registry.register(name, entry)``, or ``@registry.register(name)`` above a class or function."""
        def add(value: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} name {name!r} is registered twice")
            self._entries[name] = value
            return value

        return add if entry is None else add(entry)

    def get(self, name: str, where: str | None = None) -> T:
        """The entry called ``name``, or a UserError (prefixed by ``where``, e.g. the config key)."""
        self._builtins()
        if name not in self._entries:
            prefix = f"{where}: " if where else ""
            raise UserError(f"{prefix}unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._builtins()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._builtins()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        self._builtins()
        return name in self._entries

    def _builtins(self) -> None:
        if self._load_builtins is not None:
            load, self._load_builtins = self._load_builtins, None  # once; registering may look up
            load()


def subpackage_loader(package: str, entry_point_group: str | None = None) -> Callable[[], None]:
    """A ``load_builtins`` for plug-in folders: imports every subpackage of ``package`` (each
    registers itself in its ``__init__``), in name order, then whatever the entry point group
    names (third-party plug-ins register themselves on import)."""
    def load() -> None:
        folders = importlib.import_module(package).__path__
        for module in sorted(pkgutil.iter_modules(folders), key=lambda m: m.name):
            if module.ispkg:
                importlib.import_module(f"{package}.{module.name}")
        if entry_point_group:
            for entry in importlib.metadata.entry_points(group=entry_point_group):
                entry.load()
    return load
