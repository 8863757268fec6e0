"""Plain HTTP downloads with a clear message when the network is unreachable."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

from repmet.atomic_write import atomic_write
from repmet.errors import UserError


def download_file(url: str, destination: Path, *, what: str, timeout: float = 30.0) -> None:
    """Fetch ``url`` into ``destination`` atomically (temporary file, then rename); a failed
    download leaves no file and none of the folders it created."""
    created = [folder for folder in [destination.parent, *destination.parent.parents] if not folder.exists()]
    try:
        with atomic_write(destination) as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break  # not empty, or not ours to remove
        raise UserError(
            f"could not download {what} from {url} ({exc}). Download it by hand and place it at "
            f"{destination}, or point data.root / $REPMET_DATA at a folder that has it."
        ) from None
