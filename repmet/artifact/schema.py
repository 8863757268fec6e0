"""The JSON Schema of an artifact's ``metadata.json`` (a plain dict, checked by
``repmet.artifact.reader`` with the ``jsonschema`` package before anything else is read).

Every number that sizes an allocation (crop, resize, dimensions, counts) is bounded here, so a
damaged or hostile metadata.json is refused before it can ask for gigabytes. Needs no torch.
"""

from __future__ import annotations

from repmet.artifact.graph_formats import FORMATS
from repmet.preprocess_spec import COLORS, INTERPOLATIONS, RESIZES

SCHEMA_VERSION = 1
TASKS: tuple[str, ...] = ("classification", "detection")
DISTANCES: tuple[str, ...] = ("sqeuclidean", "cosine")

# Every artifact's embedding.fingerprint is required, and so is every gallery's. False accepts
# artifacts exported before fingerprints existed (a present fingerprint must still be 64 hex
# digits, and a gallery must match it when the artifact has one).
FINGERPRINT_REQUIRED = True
NO_FINGERPRINT = ""  # the fingerprint field of an artifact exported before fingerprints (only when not required)

# Patterns end in \Z, not $: jsonschema matches with Python's re, where $ also matches before a
# final newline ("model.pt\n" would pass).
HEX64 = r"^[0-9a-f]{64}\Z"  # a sha256 hex digest, lowercase as hashlib writes it
# A plain file name in the artifact folder: no path separator or control character, not ".",
# ".." or hidden.
FILE_NAME = r"^[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,254}\Z"

# What a failed ``pattern`` means, in words for the error message.
PATTERN_MEANINGS = {
    HEX64: "it must be 64 lowercase hexadecimal digits",
    FILE_NAME: "it must be a plain file name inside the artifact folder: no '/' or '\\', not starting with '.'",
}

from repmet.limits import MAX_CLASSES, MAX_EMBEDDING_DIM, MAX_FILES, MAX_REPS_PER_CLASS, MAX_SIDE  # noqa: E402


def _int(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


def _strings(max_items: int, max_length: int = 1_000) -> dict:
    return {"type": "array", "maxItems": max_items, "items": {"type": "string", "maxLength": max_length}}


def _per_channel(exclusive_minimum: float | None = None) -> dict:
    number: dict = {"type": "number"}
    if exclusive_minimum is not None:
        number["exclusiveMinimum"] = exclusive_minimum
    return {"type": "array", "minItems": 1, "maxItems": 3, "items": number}


_FILE = {"type": "string", "pattern": FILE_NAME}
_FILE_OR_NULL = {"type": ["string", "null"], "pattern": FILE_NAME}  # pattern applies to strings only

_INPUT = {
    "type": "object",
    "required": ["channels", "height", "width"],
    "properties": {
        "channels": {"type": "integer", "enum": [1, 3]},
        "height": _int(1, MAX_SIDE),
        "width": _int(1, MAX_SIDE),
        "dtype": {"type": "string"},
        "layout": {"type": "string"},
        "name": {"type": "string"},
    },
}

# Exactly PreprocessSpec's fields: it is built with PreprocessSpec(**preprocess).
_PREPROCESS = {
    "type": "object",
    "required": ["color", "resize", "resize_to", "interpolation", "crop", "invert", "mean", "std"],
    "additionalProperties": False,
    "properties": {
        "color": {"enum": list(COLORS)},
        "resize": {"enum": list(RESIZES)},
        "resize_to": _int(1, MAX_SIDE),
        "interpolation": {"enum": list(INTERPOLATIONS)},
        "crop": _int(1, MAX_SIDE),
        "invert": {"type": "boolean"},
        "mean": _per_channel(),
        "std": _per_channel(exclusive_minimum=0),  # divided by
    },
}

_EMBEDDING = {
    "type": "object",
    "required": ["dim", "normalized", *(["fingerprint"] if FINGERPRINT_REQUIRED else [])],
    "properties": {
        "dim": _int(1, MAX_EMBEDDING_DIM),
        "normalized": {"type": "boolean"},
        "fingerprint": {"type": "string", "pattern": HEX64},
        "output": {"type": "string"},
    },
}

_HEAD = {
    "type": "object",
    "required": ["distance", "sigma", "reps_per_class"],
    "properties": {
        "distance": {"enum": list(DISTANCES)},
        "sigma": {"type": "number", "exclusiveMinimum": 0},
        "reps_per_class": _int(1, MAX_REPS_PER_CLASS),
        "inputs": _strings(16),
        "outputs": _strings(16),
        "posterior": {"type": "string"},
    },
}

_FILES = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": MAX_FILES,
    "propertyNames": {"pattern": FILE_NAME},
    "additionalProperties": {
        "type": "object",
        "required": ["sha256", "bytes"],
        "properties": {"sha256": {"type": "string", "pattern": HEX64}, "bytes": {"type": "integer", "minimum": 0}},
    },
}


def _graphs(required: tuple[str, ...], file_keys: tuple[str, ...]) -> dict:
    """graphs[KEY] for the formats repmet knows; ``file_keys`` name files of the folder (other
    keys, e.g. opset, describe the format)."""
    return {
        "type": "object",
        "propertyNames": {"enum": [f.graph_key for f in FORMATS]},
        "additionalProperties": {
            "type": "object",
            "required": list(required),
            "properties": {key: _FILE for key in file_keys},
        },
    }


# A classifier's graphs: the embedding network and the distance head.
GRAPH_FILE_KEYS: tuple[str, ...] = ("embedding", "head")
_GRAPHS = _graphs(GRAPH_FILE_KEYS, GRAPH_FILE_KEYS)

# A detector's preprocessing: exactly DetectorPreprocess's fields (torchvision's resize rule).
_DETECTION_PREPROCESS = {
    "type": "object",
    "required": ["kind", "min_size", "max_size", "mean", "std"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "detection"},
        "min_size": _int(1, MAX_SIDE),
        "max_size": _int(1, MAX_SIDE),
        "mean": _per_channel(),
        "std": _per_channel(exclusive_minimum=0),
    },
}

# A detector's graphs: the detection graph (image, image size, gallery -> fixed-size detections)
# and the box-embedding graph (image, boxes -> embeddings, for enrollment); under "onnx" also
# the TensorRT-parser variants (RoI pooling as the ROIAlign_TRT plugin).
DETECTION_GRAPH_FILE_KEYS: tuple[str, ...] = ("detection", "box_embedding", "detection_trt", "box_embedding_trt")
_DETECTION_GRAPHS = _graphs(("detection", "box_embedding"), DETECTION_GRAPH_FILE_KEYS)

_DETECTION = {
    "type": "object",
    "required": ["max_detections", "canvas"],
    "properties": {
        "max_detections": _int(1, 10_000),
        "canvas": _int(32, MAX_SIDE),
        "score_threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "nms_iou": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

ARTIFACT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "repmet artifact metadata.json",
    "type": "object",
    "required": ["schema_version", "task", "input", "preprocess", "embedding", "head", "class_names",
                 "files", "graphs", "model", "gallery"],
    "properties": {
        "schema_version": {"type": "integer", "const": SCHEMA_VERSION},
        "task": {"enum": list(TASKS)},
        "name": {"type": "string"},
        "method": {"type": "string"},
        "source_checkpoint": {"type": "string"},
        "input": _INPUT,
        "embedding": _EMBEDDING,
        "head": _HEAD,
        "class_names": _strings(MAX_CLASSES),
        "gallery": _FILE_OR_NULL,
        "model": _FILE_OR_NULL,
        "versions": {"type": "object"},
        "verification": {"type": "object"},
        "files": _FILES,
    },
    # the task decides what preprocessing and graphs mean
    "if": {"properties": {"task": {"const": "detection"}}},
    "then": {"required": ["detection"],
             "properties": {"preprocess": _DETECTION_PREPROCESS, "graphs": _DETECTION_GRAPHS, "detection": _DETECTION}},
    "else": {"properties": {"preprocess": _PREPROCESS, "graphs": _GRAPHS}},
}

