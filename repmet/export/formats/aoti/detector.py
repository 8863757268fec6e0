"""The detector's two fixed-shape graphs compiled ahead of time with AOTInductor
(``detection.pt2``, ``box_embedding.pt2``), for C++ applications (and Python's ``aoti``
backend). RoI pooling and NMS stay calls of torchvision's operators, which the process
provides (torchvision in Python, the C++ runtime's own kernels in C++). The class count and
the number of boxes to embed are dynamic; CPU packages."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from repmet.export.formats.aoti.input_shapes import package_options
from repmet.models.detection.fixed_shape_graph import BoxEmbeddingGraph, DetectionGraph, example_inputs

MAX_CLASSES = 10_000
MAX_BOXES = 1_000


def export_detector_aoti(model: GeneralizedRCNN, canvas: int, folder: Path) -> dict:
    from torch._inductor import aoti_compile_and_package

    detection_inputs, embedding_inputs = example_inputs(model, canvas)
    classes = torch.export.Dim("classes", min=1, max=MAX_CLASSES)
    count = torch.export.Dim("boxes", min=1, max=MAX_BOXES)
    files = {"detection": "detection.pt2", "box_embedding": "box_embedding.pt2"}
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime": a CPU package
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(DetectionGraph(model, canvas).eval(), detection_inputs,
                                      dynamic_shapes=(None, None, {0: classes}))
        aoti_compile_and_package(program, package_path=str(folder / files["detection"]),
                                 inductor_configs=package_options(program))
        program = torch.export.export(BoxEmbeddingGraph(model).eval(), embedding_inputs,
                                      dynamic_shapes=(None, {0: count}))
        aoti_compile_and_package(program, package_path=str(folder / files["box_embedding"]),
                                 inductor_configs=package_options(program))
    return {**files, "device": "cpu"}
