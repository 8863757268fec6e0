"""What the writer of an artifact completes once every graph file and model.pt are in the folder:
the files' hashes and the embedding fingerprint (which the gallery carries). Export writes the
graphs; this module makes the folder an artifact that :class:`repmet.artifact.reader.Artifact`
opens."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from repmet.artifact.fingerprint import fingerprint_of
from repmet.artifact.gallery_file import Gallery
from repmet.artifact.reader import METADATA_FILE, sha256_of


def hashed_files(folder: Path) -> dict:
    """metadata.json's ``files``: the sha256 and size of every file in ``folder`` but metadata.json."""
    return {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != METADATA_FILE}


def add_fingerprint_and_gallery(metadata: dict, folder: Path, gallery: Gallery | None) -> None:
    """Completes ``metadata`` once every graph file and model.pt are in ``folder``: the embedding
    fingerprint, computed from those files' bytes and the metadata as a runtime reads it
    (repmet.artifact.fingerprint), goes into ``embedding.fingerprint`` and into ``gallery``,
    saved as ``metadata["gallery"]`` (not part of the fingerprint); then ``files`` is hashed."""
    metadata["files"] = hashed_files(folder)
    as_read = json.loads(json.dumps(metadata))
    fingerprint = fingerprint_of(as_read, {name: entry["sha256"] for name, entry in as_read["files"].items()})
    metadata["embedding"]["fingerprint"] = fingerprint
    if gallery is not None:
        replace(gallery, fingerprint=fingerprint).save(folder / metadata["gallery"])
    metadata["files"] = hashed_files(folder)


def write_metadata(folder: Path, metadata: dict) -> None:
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
