"""Every call of an AOTInductor package is checked against the input shapes stored in the package
itself (written by ``repmet.export.formats.aoti.input_shapes``, which says why): compiled code handed
another shape reads past its buffers and kills the process."""

from __future__ import annotations

import json
from pathlib import Path

from repmet.errors import UserError

METADATA_KEY = "repmet.input_shapes"


def stored_input_shapes(package, path: Path) -> list[list]:
    """The shapes ``package`` (a loaded ``.pt2``) was compiled for, or a UserError naming ``path``."""
    text = package.get_metadata().get(METADATA_KEY)
    try:
        shapes = json.loads(text) if text is not None else None
    except ValueError:
        shapes = None
    if not _well_formed(shapes):
        raise UserError(f"{path} does not record the input shapes it was compiled for (an older repmet made it, "
                        f"or it was edited); export the artifact again with metric-export --format aoti")
    return shapes


def _well_formed(shapes) -> bool:
    def size(value) -> bool:
        if isinstance(value, list):
            return len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return isinstance(value, int) and not isinstance(value, bool)

    return isinstance(shapes, list) and all(isinstance(s, list) and all(size(v) for v in s) for s in shapes)


def shape_problem(shapes: list[list], inputs) -> str | None:
    """Why ``inputs`` (tensors) do not fit ``shapes``, in words, or None when they do."""
    if len(inputs) != len(shapes):
        return f"it takes {len(shapes)} inputs, got {len(inputs)}"
    for index, (expected, tensor) in enumerate(zip(shapes, inputs)):
        got = list(tensor.shape)
        ranges = [want if isinstance(want, list) else (want, want) for want in expected]  # a size is [size, size]
        if len(got) != len(ranges) or not all(low <= size <= high for size, (low, high) in zip(got, ranges)):
            wanted = ", ".join(str(low) if low == high else f"{low}..{high}" for low, high in ranges)
            return f"input {index} must be [{wanted}], got {got}"
    return None


class CheckedPackage:
    """A loaded AOTInductor package that refuses inputs of another shape than it was compiled for."""

    def __init__(self, package, path: Path) -> None:
        self._package = package
        self.path = Path(path)
        self.input_shapes = stored_input_shapes(package, self.path)

    def __call__(self, *inputs):
        problem = shape_problem(self.input_shapes, inputs)
        if problem is not None:
            raise ValueError(f"{self.path.name} refused its inputs: {problem}")
        return self._package(*inputs)
