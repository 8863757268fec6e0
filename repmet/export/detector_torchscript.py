"""The detector's two fixed-shape graphs (:mod:`repmet.export.detector_graph`) traced to
TorchScript: ``detection.ts`` and ``box_embedding.ts``. RoI pooling and NMS are recorded as
torchvision's ops (``torchvision::roi_align``, ``torchvision::nms``): a process that loads the
files needs them registered (``import torchvision`` in Python). The class count stays dynamic
(the representatives' first dimension is read from the tensor while tracing)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from repmet.export.detector_graph import BoxEmbeddingGraph, DetectionGraph


def export_detector_torchscript(model: GeneralizedRCNN, canvas: int, folder: Path) -> dict[str, str]:
    predictor = model.roi_heads.box_predictor
    representatives = predictor.representatives.detach().reshape(predictor.num_classes, predictor.reps_per_class, -1)
    image = torch.zeros(1, 3, canvas, canvas)
    image_size = torch.tensor([float(canvas), float(canvas)])
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 96.0, 64.0]])
    files = {"detection": "detection.ts", "box_embedding": "box_embedding.ts"}
    graphs = {"detection": (DetectionGraph(model, canvas), (image, image_size, representatives)),
              "box_embedding": (BoxEmbeddingGraph(model), (image, boxes))}
    with torch.no_grad(), warnings.catch_warnings(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice; tracer notes on the fixed canvas
        for role, (graph, example) in graphs.items():
            # TF32 off while tracing: a trace records it per convolution (see torchscript_export)
            traced = torch.jit.freeze(torch.jit.trace(graph.eval(), example, check_trace=False))
            traced.save(str(folder / files[role]))
    return files
