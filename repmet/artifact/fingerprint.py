"""The embedding fingerprint of an artifact, computed from what the runtime loads, never read
from ``metadata.json`` (which can be edited together with the files it lists).

A gallery carries the fingerprint of the artifact it was made with and is refused by another.
The fingerprint is the sha256 (lowercase hex) of a canonical text, identical in Python and
C++ (repmet/runtime/cpp/src/artifact.cpp)::

    repmet-fingerprint-2
    file NAME SHA256          one line per file listed in ``files`` except the gallery, sorted by
                              name, with the sha256 of the file's bytes (as verified on loading)
    PATH=VALUE                the metadata that decides what an embedding means: ``embedding.dim``,
                              ``embedding.normalized``, ``head.distance``, ``input``, ``preprocess``

Every format's graphs are in it, so a gallery enrolled with the ONNX backend loads with the
TorchScript backend of the same artifact. PATH=VALUE lines flatten those sections: object keys
sorted (code point order), list items in order with their index as a path component, parts
joined by "."; integers as integers, other numbers as ``%.17g``, booleans ``true``/``false``,
null ``null``, strings verbatim. Control characters in strings and keys, and "." or "=" in
keys, are refused (they would make two documents read the same). Every line ends with "\\n".
Needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Iterator, Mapping

from repmet.errors import UserError

FINGERPRINT_FORMAT = "repmet-fingerprint-2"
# (section, key or None for the whole section), in the order their lines appear (path order)
MEANING = (("embedding", "dim"), ("embedding", "normalized"), ("head", "distance"), ("input", None),
           ("preprocess", None))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
REMEDY = "export the artifact again with metric-export"

__all__ = ["FINGERPRINT_FORMAT", "MEANING", "canonical_text", "fingerprint_of"]


def gallery_files(metadata: dict) -> set[str]:
    """The files that hold the gallery (never part of the fingerprint: it carries the fingerprint)."""
    name = metadata.get("gallery")
    return {name} if isinstance(name, str) else set()


def canonical_text(metadata: dict, sha256s: Mapping[str, str], where: str = "metadata.json") -> str:
    """The text hashed by ``fingerprint_of``. ``sha256s``: file name -> sha256 of its bytes,
    for every file ``metadata["files"]`` lists (verified by the caller); ``where`` names the
    metadata in error messages."""
    lines = [FINGERPRINT_FORMAT]
    skipped = gallery_files(metadata)
    for name in sorted(metadata["files"]):
        if name not in skipped:
            lines.append(f"file {name} {sha256s[name]}")
    for section, key in MEANING:
        value = metadata[section] if key is None else metadata[section][key]
        path = section if key is None else f"{section}.{key}"
        lines.extend(_flattened(path, value, where))
    return "".join(line + "\n" for line in lines)


def fingerprint_of(metadata: dict, sha256s: Mapping[str, str], where: str = "metadata.json") -> str:
    """The embedding fingerprint (64 lowercase hex digits) of an artifact: see the module."""
    return hashlib.sha256(canonical_text(metadata, sha256s, where).encode("utf-8")).hexdigest()


def _flattened(path: str, value: Any, where: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key in sorted(value):
            if _CONTROL.search(key) or "." in key or "=" in key:
                _refuse(where, f"{path}.{key}", value[key], "its keys must not hold control characters, '.' or '='")
            yield from _flattened(f"{path}.{key}", value[key], where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flattened(f"{path}.{index}", item, where)
    else:
        yield f"{path}={_scalar(path, value, where)}"


def _scalar(path: str, value: Any, where: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            _refuse(where, path, value, "integers must fit in 64 bits")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            _refuse(where, path, value, "it must be a finite number")
        return format(value, ".17g")
    if isinstance(value, str):
        if _CONTROL.search(value):
            _refuse(where, path, value, "it must not hold control characters")
        return value
    _refuse(where, path, value, f"a {type(value).__name__} is not a JSON value")


def _refuse(where: str, path: str, value: Any, why: str) -> None:
    """The sentence of repmet.artifact.reader (and of the C++ runtime): key path, value, why."""
    shown = json.dumps(value, default=repr)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise UserError(f"{where}: {path} = {shown} is invalid ({why}); {REMEDY}")
