"""MATLAB ``.mat`` split files, read with SciPy (as torchvision does for these datasets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repmet.errors import UserError


def read_mat(path: Path, keys: tuple[str, ...], help_text: str) -> dict[str, Any]:
    from scipy.io import loadmat

    if not path.is_file():
        raise UserError(f"missing {path}; {help_text}")
    try:
        content = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for damaged files
        raise UserError(f"cannot read {path} ({exc}); download it again. {help_text}") from None
    missing = [key for key in keys if key not in content]
    if missing:
        raise UserError(f"{path} has no {', '.join(missing)}; {help_text}")
    return content
