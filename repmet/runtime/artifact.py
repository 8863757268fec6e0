"""Reading an exported artifact folder: ``metadata.json`` plus the files it lists, each
checked against its sha256 before anything is loaded. Needs no torch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from repmet.errors import UserError
from repmet.runtime.preprocess import PreprocessSpec

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json_object(path: Path, remedy: str) -> dict:
    """The JSON object in ``path``, or a UserError naming the file and ``remedy``."""
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); {remedy}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} does not hold a JSON object; {remedy}")
    return value


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: ``folder``, its parsed ``metadata`` and helpers to reach its files."""

    folder: Path
    metadata: dict

    @classmethod
    def open(cls, folder: str | Path) -> "Artifact":
        folder = Path(folder)
        meta_path = folder / METADATA_FILE
        if not meta_path.is_file():
            raise UserError(f"{folder} is not an artifact: {METADATA_FILE} is missing; export one with "
                            f"metric-export CHECKPOINT --out {folder}")
        metadata = read_json_object(meta_path, "export the artifact again")
        version = metadata.get("schema_version")
        if version != SCHEMA_VERSION:
            raise UserError(f"{meta_path} has schema version {version!r}, this repmet reads version "
                            f"{SCHEMA_VERSION}; export the checkpoint again with this version of metric-export")
        for name, entry in metadata["files"].items():
            path = folder / name
            if not path.is_file():
                raise UserError(f"artifact {folder} is incomplete: {name} is missing; copy the whole folder "
                                f"or export it again")
            if sha256_of(path) != entry["sha256"]:
                raise UserError(f"artifact {folder}: {name} does not match its sha256 in {METADATA_FILE} "
                                f"(changed or corrupted); export it again")
        return cls(folder, metadata)

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.metadata["preprocess"])

    def formats(self) -> list[str]:
        return list(self.metadata["graphs"])

    def graph(self, fmt: str, role: str) -> Path:
        """The file of graph ``role`` ("embedding" or "head") in format ``fmt``."""
        graphs = self.metadata["graphs"]
        if fmt not in graphs or role not in graphs[fmt]:
            raise UserError(f"artifact {self.folder} has no {fmt} {role} graph (it has: "
                            f"{', '.join(graphs) or 'none'}); export it with metric-export --format {fmt}")
        return self.folder / graphs[fmt][role]

    def file(self, name: str) -> Path:
        return self.folder / name
