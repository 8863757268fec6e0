"""A graph that refuses its inputs (ONNX Runtime's InvalidArgument, a TorchScript RuntimeError)
means the artifact's metadata.json does not describe the graph it ships, most often a file edited
or copied from another export: a sentence that says so, not a framework's traceback."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from repmet.errors import UserError


@contextmanager
def graph_errors(folder: Path, backend: str, what: str) -> Iterator[None]:
    """Turn any error of the graphs run inside the block into a UserError naming ``folder``'s
    metadata.json; ``what``: the inputs, in words (shapes), for the message."""
    try:
        yield
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"the {backend} graphs of {folder} ran out of memory on {what}; give fewer or smaller "
                        f"images at a time") from None
    except Exception as exc:  # ONNX Runtime's errors derive from Exception only
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        if lines and "failed in the TorchScript interpreter" in lines[0]:
            lines = lines[-1:]  # the interpreter's own error comes last, after the TorchScript traceback
        reason = f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
        raise UserError(f"the {backend} graphs of {folder} refused {what} ({reason}); {Path(folder) / 'metadata.json'} "
                        f"(preprocess, input) does not describe what the graphs take: export the artifact again") \
            from None
