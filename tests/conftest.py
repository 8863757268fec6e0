import os
import shutil
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets: $REPMET_DATA, else ../shared/data next to the project."""
    root = Path(os.environ.get("REPMET_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    if not (root / "omniglot").is_dir():
        pytest.fail(f"real data not found at {root}; set REPMET_DATA to the folder holding omniglot/")
    return root


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("REPMET_CACHE", str(cache))
    return cache


def script(name: str) -> str:
    """A console script of the Python running the tests (its venv need not be on PATH)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)
