"""RoIAlign of one image's boxes, as torchvision computes it, with one export rule per target:
ONNX's standard ``RoiAlign`` (opset 16+) for ONNX Runtime, or TensorRT's registered
``ROIAlign_TRT`` plugin (version 2) for the TensorRT ONNX parser, which finds a plugin by the
node's op type in its registry (``init_libnvinfer_plugins``)."""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal

import torch
import torchvision

Target = Literal["onnx", "tensorrt"]
_target: list[Target] = ["onnx"]


@contextlib.contextmanager
def roi_align_export_target(target: Target) -> Iterator[None]:
    """Export :func:`roi_align` as ``target``'s op while the block runs."""
    if target not in ("onnx", "tensorrt"):
        raise ValueError(f"unknown RoIAlign export target {target!r}")
    _target.append(target)
    try:
        yield
    finally:
        _target.pop()


class _RoIAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, boxes, output_size: int, spatial_scale: float, sampling_ratio: int, aligned: bool):
        rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1)
        return torchvision.ops.roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    def symbolic(g, features, boxes, output_size, spatial_scale, sampling_ratio, aligned):
        count = g.op("Gather", g.op("Shape", boxes), g.op("Constant", value_t=torch.tensor([0])), axis_i=0)
        if _target[-1] == "tensorrt":
            # TensorRT's plugin takes int32 batch indices; its fields are named as below
            indices = g.op("ConstantOfShape", count, value_t=torch.tensor([0], dtype=torch.int32))
            pooled = g.op("trt::ROIAlign_TRT", features, boxes, indices, output_height_i=output_size,
                          output_width_i=output_size, spatial_scale_f=spatial_scale, sampling_ratio_i=sampling_ratio,
                          coordinate_transformation_mode_i=int(aligned), mode_i=1, plugin_version_s="2",
                          plugin_namespace_s="")
            # the exporter cannot infer a plugin's output; without a shape here it guards later
            # squeezes with If nodes
            sizes = features.type().varyingSizes() if features.type().dim() else None
            channels = sizes[1] if sizes else None
            pooled.setType(features.type().with_sizes([None, channels, output_size, output_size]))
            return pooled
        indices = g.op("ConstantOfShape", count, value_t=torch.tensor([0], dtype=torch.int64))
        return g.op("RoiAlign", features, boxes, indices, output_height_i=output_size, output_width_i=output_size,
                    spatial_scale_f=spatial_scale, sampling_ratio_i=sampling_ratio, mode_s="avg",
                    coordinate_transformation_mode_s="half_pixel" if aligned else "output_half_pixel")


def roi_align(features: torch.Tensor, boxes: torch.Tensor, output_size: int, spatial_scale: float,
              sampling_ratio: int, aligned: bool) -> torch.Tensor:
    """``features [1, C, H, W]``, ``boxes [R, 4]`` (x1, y1, x2, y2 in image pixels) ->
    ``[R, C, output_size, output_size]``. ``sampling_ratio`` must be explicit (> 0): ONNX
    Runtime, TensorRT and torchvision agree on a fixed grid."""
    if sampling_ratio <= 0:
        raise ValueError("give RoIAlign an explicit sampling_ratio (> 0); adaptive sampling does not export")
    if torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
        # a TorchScript trace records torchvision's op itself (a Python Function would not save)
        return _RoIAlign.forward(None, features, boxes, int(output_size), float(spatial_scale), int(sampling_ratio),
                                 bool(aligned))
    return _RoIAlign.apply(features, boxes, int(output_size), float(spatial_scale), int(sampling_ratio), bool(aligned))
