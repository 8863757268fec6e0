"""Checkpoints: plain state-dict bundles, written atomically, loaded without pickle.

A checkpoint describes itself (format version 2): besides the weights and the resolved config
it holds the method's name, the class names, the preprocessing the model expects (the same
spec an artifact carries) and the method's gallery (representatives ``[C, K, D]``, sigma,
distance, whether embeddings are L2-normalised), so export and evaluation reconstruct nothing
from dataset knowledge. Version 1 checkpoints (without the description) still load:
``repmet.methods.open_checkpoint`` derives the description from their config and weights.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from repmet.atomic_write import atomic_write, remove_stale_temporaries
from repmet.errors import UserError

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
REQUIRED_KEYS = ("format_version", "model", "config", "epoch")
DESCRIPTION_KEYS = ("method", "class_names", "preprocess", "gallery")  # version 2
RESUME_KEYS = ("optimizer", "scheduler", "torch_rng", "best_val", "history")


def save_checkpoint(bundle: dict[str, Any], path: str | Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``:
    a crash at any moment leaves either the old file or the new one, never half of one."""
    with atomic_write(path) as handle:
        torch.save({**bundle, "format_version": FORMAT_VERSION}, handle)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``; refuse a missing, corrupt, truncated, foreign or
    non-finite file with a sentence that names it."""
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
    if bundle["format_version"] not in READABLE_VERSIONS:
        raise UserError(f"checkpoint {path} has format version {bundle['format_version']}; this repmet reads "
                        f"versions {', '.join(map(str, READABLE_VERSIONS))}")
    if not isinstance(bundle["model"], dict) or not isinstance(bundle["config"], dict):
        raise UserError(f"{path} is not a repmet checkpoint: 'model' and 'config' must be mappings")
    require_finite(bundle["model"], f"checkpoint {path}")
    return bundle


def require_finite(state: dict[str, Any], where: str) -> None:
    """Stop on NaN or infinite weights: a diverged model evaluates to chance and resumes into NaN."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise UserError(f"{where} has non-finite weights ({bad} NaN/Inf values in {key!r}): training diverged "
                            f"before it was written. Use an earlier checkpoint, or train again with a lower train.lr")


def require_resumable(bundle: dict[str, Any], path: str | Path) -> None:
    missing = [key for key in RESUME_KEYS if key not in bundle]
    if missing:
        raise UserError(f"cannot resume from {path}: it has no training state ({', '.join(missing)} missing), as "
                        f"released and exported checkpoints do; resume from a run's checkpoints/last.pt, or start "
                        f"a new run without --resume")


def last_checkpoint(out_dir: str | Path) -> Path:
    """``OUT/checkpoints/last.pt``, the checkpoint ``--resume`` continues from."""
    path = Path(out_dir) / "checkpoints" / "last.pt"
    if not path.is_file():
        raise UserError(f"nothing to resume in {out_dir}: {path} does not exist; run without --resume, "
                        f"or pass the --out folder of the run to continue")
    return path


def clean_checkpoint_folder(out_dir: str | Path) -> list[Path]:
    """Remove temporary files that a run killed in the middle of a checkpoint write left behind."""
    return remove_stale_temporaries(Path(out_dir) / "checkpoints")
