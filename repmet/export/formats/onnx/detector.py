"""The detector's two graphs to ONNX, in one of two variants: ``onnx`` (standard RoiAlign and
NonMaxSuppression, for ONNX Runtime) or ``tensorrt`` (RoI pooling as TensorRT's registered
ROIAlign_TRT plugin, everything else native layers, for TensorRT's ONNX parser)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from repmet.models.detection.fixed_shape_graph import BoxEmbeddingGraph, DetectionGraph, example_inputs
from repmet.ops.roi_align import Target, roi_align_export_target

DETECTION_OPSET = 17  # RoiAlign's half-pixel modes need 16+
DETECTION_INPUTS = ["image", "image_size", "representatives"]
DETECTION_OUTPUTS = ["boxes", "scores", "labels", "count"]
EMBEDDING_INPUTS = ["image", "boxes"]


def export_detector_onnx(model: GeneralizedRCNN, canvas: int, folder: Path, target: Target = "onnx",
                         opset: int = DETECTION_OPSET) -> dict[str, str]:
    """Write ``detection[_trt].onnx`` and ``box_embedding[_trt].onnx`` into ``folder``."""
    suffix = "" if target == "onnx" else "_trt"
    detection_inputs, embedding_inputs = example_inputs(model, canvas)
    files = {"detection": f"detection{suffix}.onnx", "box_embedding": f"box_embedding{suffix}.onnx"}
    with roi_align_export_target(target), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shapes read as ints: the canvas is fixed
        torch.onnx.export(DetectionGraph(model, canvas), detection_inputs,
                          str(folder / files["detection"]), dynamo=False, opset_version=opset,
                          input_names=DETECTION_INPUTS, output_names=DETECTION_OUTPUTS,
                          dynamic_axes={"representatives": {0: "classes"}})
        torch.onnx.export(BoxEmbeddingGraph(model), embedding_inputs, str(folder / files["box_embedding"]),
                          dynamo=False, opset_version=opset, input_names=EMBEDDING_INPUTS, output_names=["embeddings"],
                          dynamic_axes={"boxes": {0: "boxes"}, "embeddings": {0: "boxes"}})
    return files
