"""Checkpoints: plain state-dict bundles, written atomically, loaded without pickle."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from repmet.atomic_write import atomic_write
from repmet.errors import UserError

REQUIRED_KEYS = ("format_version", "model", "config", "epoch")
FORMAT_VERSION = 1


def save_checkpoint(bundle: dict[str, Any], path: str | Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``:
    a crash at any moment leaves either the old file or the new one, never half of one."""
    with atomic_write(path) as handle:
        torch.save({"format_version": FORMAT_VERSION, **bundle}, handle)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``; refuse a missing, corrupt, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"checkpoint {path} holds objects other than tensors and plain containers; refusing to unpickle "
            f"it ({str(exc).splitlines()[0]})") from None
    except Exception as exc:  # torch raises many types for damaged files
        raise UserError(f"checkpoint {path} is corrupt or truncated and was not loaded ({type(exc).__name__}: {exc})") from None
    if not isinstance(bundle, dict) or any(key not in bundle for key in REQUIRED_KEYS):
        raise UserError(f"{path} is not a repmet checkpoint (expected keys {', '.join(REQUIRED_KEYS)})")
    if bundle["format_version"] != FORMAT_VERSION:
        raise UserError(f"checkpoint {path} has format version {bundle['format_version']}; this repmet reads {FORMAT_VERSION}")
    return bundle


def last_checkpoint(out_dir: str | Path) -> Path:
    """``OUT/checkpoints/last.pt``, the checkpoint ``--resume`` continues from."""
    path = Path(out_dir) / "checkpoints" / "last.pt"
    if not path.is_file():
        raise UserError(f"nothing to resume in {out_dir}: {path} does not exist; run without --resume, "
                        f"or pass the --out folder of the run to continue")
    return path
