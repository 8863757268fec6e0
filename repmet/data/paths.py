"""Where datasets and caches live on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from repmet.atomic_write import atomic_write

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_data_root() -> Path:
    """The folder that holds one sub-folder per dataset.

    Order: ``$REPMET_DATA``; the development copy at ``../shared/data`` next to a
    source checkout; else ``~/.cache/repmet/data`` (where downloads go).
    """
    env = os.environ.get("REPMET_DATA")
    if env:
        return Path(env).expanduser()
    shared = _PROJECT_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return Path.home() / ".cache" / "repmet" / "data"


def cache_dir() -> Path:
    """Folder for decoded-dataset caches (``$REPMET_CACHE`` or ``~/.cache/repmet``)."""
    env = os.environ.get("REPMET_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "repmet"
    root.mkdir(parents=True, exist_ok=True)
    return root


def save_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to a temporary file, then rename: readers never see half a cache."""
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)
