"""The runtime's input limits, one table for Python and C++: ``limits.json`` beside this file
(the C++ build compiles the same file into ``limits.h``). Anything a user may hand the runtime
(an image, a gallery, a support file, a label) is checked against these before memory is spent on
it."""

from __future__ import annotations

import json
from pathlib import Path

_TABLE = json.loads((Path(__file__).with_name("limits.json")).read_text())

MAX_PIXELS: int = _TABLE["max_pixels"]  # Pillow's decompression-bomb threshold
MAX_SIDE: int = _TABLE["max_side"]  # of a model input (crop, canvas)
MAX_CLASSES: int = _TABLE["max_classes"]
MAX_REPS_PER_CLASS: int = _TABLE["max_reps_per_class"]
MAX_EMBEDDING_DIM: int = _TABLE["max_embedding_dim"]
MAX_LABEL_CHARS: int = _TABLE["max_label_chars"]
MAX_BOXES_PER_ENROLL: int = _TABLE["max_boxes_per_enroll"]
MAX_GALLERY_BYTES: int = _TABLE["max_gallery_bytes"]  # of a gallery's representatives, inflated
MAX_FILES: int = _TABLE["max_files"]  # in an artifact
MAX_JSON_BYTES: int = _TABLE["max_json_bytes"]
MAX_JSON_DEPTH: int = _TABLE["max_json_depth"]


def table() -> dict[str, int]:
    """Every limit by its name in ``limits.json``."""
    return {k: v for k, v in _TABLE.items() if not k.startswith("_")}


class NestedTooDeep(Exception):
    """JSON nested beyond ``max_json_depth``; its text is the phrase both runtimes say."""


def loads_within_depth(text: str, **loads_options):
    """``json.loads(text)``, refused with NestedTooDeep when it nests more than ``MAX_JSON_DEPTH``
    levels (or so deep that Python's parser runs out of stack)."""
    too_deep = f"is nested more than {MAX_JSON_DEPTH} levels deep"
    try:
        value = json.loads(text, **loads_options)
    except RecursionError:
        raise NestedTooDeep(too_deep) from None
    if nested_deeper_than(value):
        raise NestedTooDeep(too_deep)
    return value


def nested_deeper_than(value, depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON ``value`` nests containers more than ``depth`` levels below the top one,
    counted as the C++ runtime's parser counts them (nlohmann::json: the top value is at depth 0)."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if level + 1 > depth:
                return True
            if isinstance(child, (dict, list)):
                stack.append((child, level + 1))
    return False
