"""Static int8 quantization of an embedding graph with ONNX Runtime's quantization tool.

Choices, measured on the Flowers Lite0 classifier (benchmarks/int8_classifier.py):
- QDQ format (QuantizeLinear/DequantizeLinear pairs around each op), which ONNX Runtime fuses
  into integer kernels on the CPU and which other runtimes (TensorRT, OpenVINO) read too.
- Per-channel int8 weights: depthwise convolutions (most of EfficientNet-Lite) have channels of
  very different ranges, one scale per tensor loses them.
- uint8 activations with min-max ranges over the calibration images: the Lite networks clip
  every activation with ReLU6, so the ranges are bounded and min-max needs no outlier rule.
- ``reduce_range`` (7-bit weights): x86 CPUs without VNNI add pairs of u8 x s8 products in 16
  bits (vpmaddubsw), which 8-bit weights can saturate; 7-bit weights cannot, so the accuracy
  measured at export holds on every x86 CPU. It costs accuracy: on the full Flowers 102 test set
  7-bit weights lose 0.62 points against fp32, 8-bit ones 0.18 (same calibration, VNNI CPU).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from repmet.errors import UserError
from repmet.imaging import images_under
from repmet.methods.base import LabeledSample

CALIBRATION_BATCH = 16


def calibration_sample(model, calibration: str | None, count: int, data_root: str | None) -> LabeledSample:
    """The images the activation ranges are measured on: ``--calibration FOLDER`` (prepared as the
    runtime prepares a user's images), else the checkpoint's training split."""
    if calibration:
        from repmet.runtime.preprocess import preprocess_batch

        folder = Path(calibration)
        paths = images_under(folder)
        if len(paths) < 2:
            raise UserError(f"--calibration {folder}: need a folder of images (at least 2; a few hundred of what the "
                            f"model will see), found {len(paths)}")
        picks = np.unique(np.linspace(0, len(paths) - 1, min(count, len(paths))).round().astype(int))
        chosen = [paths[i] for i in picks]
        images = preprocess_batch(chosen, model.preprocess, [str(p) for p in chosen])
        return LabeledSample(images, np.zeros(len(chosen), int), [], f"{len(chosen)} images of {folder}")
    config = model.config
    split = config.data.train_split
    try:
        return model.trained.method.labeled_images(config, data_root or config.data.root, split, count)
    except UserError as exc:
        raise UserError(f"int8 calibration needs real images and the {config.data.dataset} {split} split is not "
                        f"readable ({exc}); pass --calibration FOLDER_OF_IMAGES or --data-root DIR") from None


def quantize_embedding(source: Path, target: Path, images: np.ndarray) -> dict:
    """Write the int8 twin of the fp32 embedding graph ``source`` to ``target``; returns the settings used."""
    batches = [{"images": np.ascontiguousarray(images[i:i + CALIBRATION_BATCH], np.float32)}
               for i in range(0, len(images), CALIBRATION_BATCH)]
    return quantize_graph(source, target, batches)


def quantize_graph(source: Path, target: Path, feeds: list[dict], quantize_node=None) -> dict:
    """Write the int8 twin of ``source`` to ``target``, activation ranges measured on ``feeds`` (one
    input dict per run); ``quantize_node(name)`` picks the nodes to quantize (default: every one
    ONNX Runtime can). Returns the settings used."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.remaining = iter(feeds)

        def get_next(self):
            return next(self.remaining, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"  # shapes inferred, constants folded: what the tool expects
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        nodes = None
        if quantize_node is not None:
            nodes = [node.name for node in onnx.load(str(prepared)).graph.node if quantize_node(node.name)]
        quantize_static(str(prepared), str(target), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_quantize=nodes)
    return {"method": "static QDQ, min-max", "weights": "int8 per channel (7-bit range)", "activations": "uint8"}
