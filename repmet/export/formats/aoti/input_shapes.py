"""The input shapes an AOTInductor package was compiled for, stored in the package itself.

A package runs whatever tensors it is handed, with the sizes compiled in: handed a 14 x 14 image
where it was compiled for 28 x 28, it reads past the end of the buffer and the process dies
("double free or corruption", measured on torch 2.14). AOTInductor's own input checks are off
unless the environment says ``AOTI_RUNTIME_CHECK_INPUTS=1``, and even then refuse batch 1 of a
dynamic batch. So every package records its inputs under ``repmet.input_shapes`` in its metadata,
as JSON: one list per input, each dimension a size or ``[lo, hi]`` when it is dynamic. Both
runtimes check every call against it (:mod:`repmet.runtime.backends.aoti.input_shapes`, C++ graph_pair.cpp);
a package without it is refused, so a ``metadata.json`` that lies about the input can never reach
compiled code."""

from __future__ import annotations

import json

import torch

from repmet.runtime.backends.aoti.input_shapes import METADATA_KEY

UNBOUNDED = 2**62  # a dynamic size without an upper bound in the export


def input_shapes(program: torch.export.ExportedProgram) -> list[list]:
    """Each user input's sizes, a dynamic one as its ``[lo, hi]`` range from the export."""
    ranges = {str(symbol): bound for symbol, bound in program.range_constraints.items()}
    shapes = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in program.graph_signature.user_inputs:
            continue
        shape = []
        for size in node.meta["val"].shape:
            if isinstance(size, int):
                shape.append(size)
            else:
                bound = ranges[str(size.node.expr)]
                high = int(bound.upper) if bound.upper.is_finite else UNBOUNDED
                shape.append([min(int(bound.lower), 1), high])  # the export's lower bound of 2 is a tracing artefact
        shapes.append(shape)
    return shapes


def package_options(program: torch.export.ExportedProgram) -> dict:
    """``inductor_configs`` for ``aoti_compile_and_package`` that store the program's input shapes."""
    return {"aot_inductor.metadata": {METADATA_KEY: json.dumps(input_shapes(program))}}
