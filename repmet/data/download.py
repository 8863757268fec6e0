"""Plain HTTP downloads with a clear message when the network is unreachable."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from repmet.errors import UserError


def download_file(url: str, destination: Path, *, what: str, timeout: float = 30.0) -> None:
    """Fetch ``url`` into ``destination`` atomically (temporary file, then rename)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp, destination)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UserError(
            f"could not download {what} from {url} ({exc}). Download it by hand and place it at "
            f"{destination}, or point data.root / $REPMET_DATA at a folder that has it."
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
