"""Reading an exported artifact folder: ``metadata.json`` plus the files it lists.

``metadata.json`` is checked against its JSON Schema (``repmet.artifact.schema``) and
for consistency before anything it names is read, then every file against its size and sha256.
Needs no torch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from repmet.errors import UserError
from repmet.limits import MAX_JSON_BYTES, NestedTooDeep, loads_within_depth
from repmet.artifact.graph_formats import CLI_FORMATS, by_graph_key
from repmet.artifact.schema import (ARTIFACT_SCHEMA, DETECTION_GRAPH_FILE_KEYS, GRAPH_FILE_KEYS,
                                            PATTERN_MEANINGS, SCHEMA_VERSION)
from repmet.artifact.fingerprint import fingerprint_of
from repmet.preprocess_spec import PreprocessSpec

METADATA_FILE = "metadata.json"
REMEDY = "export the artifact again with metric-export"

__all__ = ["Artifact", "METADATA_FILE", "SCHEMA_VERSION", "read_json_object", "sha256_of"]


def _is_int(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


# JSON Schema counts 224.0 as an integer; Pillow and numpy do not, so only true ints pass.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int))
_VALIDATOR = _Validator(ARTIFACT_SCHEMA)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def read_json_object(path: Path, remedy: str) -> dict:
    """The JSON object in ``path``, or a UserError naming the file and ``remedy``. NaN and
    Infinity (which Python's json reads by default) are refused: they are not JSON."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise UserError(f"{path} is {path.stat().st_size} bytes, more than the limit of {MAX_JSON_BYTES} for a JSON "
                            f"file; {remedy}")
        value = loads_within_depth(path.read_text(), parse_constant=_refuse_constant)
    except NestedTooDeep as exc:
        raise UserError(f"{path} {exc}; {remedy}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); {remedy}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} does not hold a JSON object; {remedy}")
    return value


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: ``folder``, its parsed ``metadata`` and helpers to reach its files."""

    folder: Path
    metadata: dict
    computed_fingerprint: str = field(default="", repr=False)  # set by open: of the files as verified

    @classmethod
    def open(cls, folder: str | Path) -> "Artifact":
        folder = Path(folder)
        meta_path = folder / METADATA_FILE
        if not meta_path.is_file():
            raise UserError(f"{folder} is not an artifact: {METADATA_FILE} is missing; export one with "
                            f"metric-export CHECKPOINT --out {folder}")
        metadata = read_json_object(meta_path, REMEDY)
        version = metadata.get("schema_version")
        if version != SCHEMA_VERSION:  # said first: a newer layout fails the schema for this one reason
            raise UserError(f"{meta_path} has schema version {version!r}, this repmet reads version "
                            f"{SCHEMA_VERSION}; export the checkpoint again with this version of metric-export")
        _validate_schema(metadata, meta_path)
        _check_consistency(metadata, meta_path)
        sha256s = _check_files(metadata, folder, meta_path)
        fingerprint = fingerprint_of(metadata, sha256s, str(meta_path))
        if metadata["embedding"].get("fingerprint", fingerprint) != fingerprint:
            raise UserError(f"artifact {folder}: {METADATA_FILE}'s embedding.fingerprint does not match the "
                            f"artifact's files (edited?); export the artifact again")
        return cls(folder, metadata, fingerprint)

    @property
    def task(self) -> str:
        """"classification" or "detection"."""
        return self.metadata["task"]

    @property
    def fingerprint(self) -> str:
        """The embedding's fingerprint (64 hex digits): galleries made with this model carry it.
        Computed from the graph files' bytes and the preprocessing (repmet.artifact.fingerprint),
        never read from metadata.json: an artifact whose embedding.fingerprint differs is refused."""
        return self.computed_fingerprint or _unopened(self.folder)

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.metadata["preprocess"])

    def formats(self) -> list[str]:
        return list(self.metadata["graphs"])

    def graph(self, fmt: str, role: str) -> Path:
        """The file of graph ``role`` ("embedding" or "head") in format ``fmt`` (a graph key)."""
        graphs = self.metadata["graphs"]
        if fmt not in graphs or role not in graphs[fmt]:
            raise UserError(f"artifact {self.folder} has no {fmt} {role} graph (it has: "
                            f"{', '.join(graphs) or 'none'}); {_export_hint(fmt)}")
        return self.folder / graphs[fmt][role]

    def file(self, name: str) -> Path:
        return self.folder / name


def _export_hint(graph_key: str) -> str:
    try:
        return f"export it with metric-export --format {by_graph_key(graph_key).cli_name}"
    except StopIteration:
        return f"repmet knows no format {graph_key!r} (metric-export --format {', '.join(CLI_FORMATS)})"


# ---------------------------------------------------------------- metadata.json checks
def _validate_schema(metadata: dict, meta_path: Path) -> None:
    error = best_match(_VALIDATOR.iter_errors(metadata))
    if error is not None:
        raise UserError(_describe(error, meta_path))


def _describe(error: ValidationError, meta_path: Path) -> str:
    """A sentence naming the key path, its value and what was expected."""
    key = _key_path(error.absolute_path)
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        return f"{meta_path}: {_join(key, missing)} is missing; {REMEDY}"
    reason = PATTERN_MEANINGS.get(error.validator_value, error.message) if error.validator == "pattern" \
        else error.message
    # the limits of the table, in the C++ runtime's words
    if error.validator in ("maxItems", "maxProperties"):
        reason = f"{len(error.instance)} entries, more than the limit of {error.validator_value}"
    if error.validator in ("minimum", "maximum", "type") and {"minimum", "maximum"} <= error.schema.keys() \
            and error.schema.get("type") == "integer":
        reason = f"it must be an integer from {error.schema['minimum']} to {error.schema['maximum']}"
    if "propertyNames" in error.schema_path:  # the offending thing is a key of the object at `key`
        return f"{meta_path}: {key} has the key {_short(error.instance)}, which is invalid ({reason}); {REMEDY}"
    return f"{meta_path}: {key or 'the top level'} = {_short(error.instance)} is invalid ({reason}); {REMEDY}"


def _check_consistency(metadata: dict, meta_path: Path) -> None:
    """What the schema cannot say: values that must agree with each other."""
    if metadata["task"] == "classification":
        _check_classifier_consistency(metadata, meta_path)
    files = metadata["files"]
    for key, name in _referenced_files(metadata):
        if name not in files:
            _inconsistent(meta_path, key, name, "it is not listed in files, so it would be loaded without "
                                                "its sha256 being checked")


def _check_classifier_consistency(metadata: dict, meta_path: Path) -> None:
    channels = metadata["input"]["channels"]
    preprocess = metadata["preprocess"]
    color_channels = 1 if preprocess["color"] == "L" else 3
    if color_channels != channels:
        _inconsistent(meta_path, "preprocess.color", preprocess["color"],
                      f"it makes {color_channels}-channel images, input.channels is {channels}")
    for key in ("mean", "std"):
        if len(preprocess[key]) != channels:
            _inconsistent(meta_path, f"preprocess.{key}", preprocess[key],
                          f"it needs one value per input channel (input.channels is {channels})")
    for side in ("height", "width"):
        if metadata["input"][side] != preprocess["crop"]:
            _inconsistent(meta_path, "preprocess.crop", preprocess["crop"],
                          f"preprocessing makes crop x crop images, input.{side} is {metadata['input'][side]}")


def _referenced_files(metadata: dict) -> Iterator[tuple[str, str]]:
    """(key path, file name) of every file the runtime may load."""
    roles = DETECTION_GRAPH_FILE_KEYS if metadata["task"] == "detection" else GRAPH_FILE_KEYS
    for fmt, graph in metadata["graphs"].items():
        for role in roles:
            if role in graph:
                yield f"graphs.{fmt}.{role}", graph[role]
    for key in ("model", "gallery"):
        if metadata[key] is not None:
            yield key, metadata[key]


def _check_files(metadata: dict, folder: Path, meta_path: Path) -> dict[str, str]:
    """Every listed file present with its size and sha256; returns name -> sha256 of its bytes."""
    root = folder.resolve()
    sha256s = {}
    for name, entry in metadata["files"].items():
        path = folder / name
        if not path.resolve().is_relative_to(root):  # e.g. a symbolic link out of the folder
            _inconsistent(meta_path, f"files.{name}", str(path.resolve()), "it lies outside the artifact folder")
        if not path.is_file():
            raise UserError(f"artifact {folder} is incomplete: {name} is missing; copy the whole folder "
                            f"or export it again")
        actual = sha256_of(path) if path.stat().st_size == entry["bytes"] else None
        if actual != entry["sha256"]:
            raise UserError(f"artifact {folder}: {name} does not match its sha256 in {METADATA_FILE} "
                            f"(changed or corrupted); export it again")
        sha256s[name] = actual
    return sha256s


def _unopened(folder: Path) -> str:
    raise UserError(f"artifact {folder} was not opened with Artifact.open, so its fingerprint is unknown")


def _inconsistent(meta_path: Path, key: str, value: Any, why: str) -> None:
    raise UserError(f"{meta_path}: {key} = {_short(value)} is invalid ({why}); {REMEDY}")


def _key_path(parts) -> str:
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, str(part))
    return text


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, Path) else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
