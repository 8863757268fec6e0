"""The detector's two fixed-shape graphs (:mod:`repmet.models.detection.fixed_shape_graph`) traced to
TorchScript: ``detection.ts`` and ``box_embedding.ts``. RoI pooling and NMS are recorded as
torchvision's ops (``torchvision::roi_align``, ``torchvision::nms``): a process that loads the
files needs them registered (``import torchvision`` in Python). The class count stays dynamic
(the representatives' first dimension is read from the tensor while tracing)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from repmet.models.detection.fixed_shape_graph import BoxEmbeddingGraph, DetectionGraph, example_inputs
from repmet.export.input_guard import GuardedBoxGraph, GuardedDetectionGraph, guarded


def export_detector_torchscript(model: GeneralizedRCNN, canvas: int, folder: Path) -> dict[str, str]:
    detection_inputs, embedding_inputs = example_inputs(model, canvas)
    files = {"detection": "detection.ts", "box_embedding": "box_embedding.ts"}
    graphs = {"detection": (DetectionGraph(model, canvas), detection_inputs, GuardedDetectionGraph),
              "box_embedding": (BoxEmbeddingGraph(model), embedding_inputs, GuardedBoxGraph)}
    with torch.no_grad(), warnings.catch_warnings(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice; tracer notes on the fixed canvas
        for role, (graph, example, guard) in graphs.items():
            # TF32 off while tracing: a trace records it per convolution (see torchscript_export)
            traced = torch.jit.trace(graph.eval(), example, check_trace=False)
            traced = guarded(traced, guard, example[0].shape[1:])  # the canvas only: see input_guard
            traced.save(str(folder / files[role]))
    return files
