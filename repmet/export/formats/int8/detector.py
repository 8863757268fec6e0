"""The detector in int8: the blocks of the two EfficientNet-Lite trunks of the detection graph (the
proposals' backbone and the region embedder's) and of the box-embedding graph's trunk, quantized;
their first and last convolutions, the feature pyramid, the RPN and box heads, RoI pooling, box
decoding, NMS and the distance head stay fp32.

Measured on the shipped fsod-mini detector (AP50 of its 8 trained classes on the 378 test images,
ms per image through ONNX Runtime; fp32: 42.8, 130 ms): quantizing every node ONNX Runtime can
(box regression, the distances, the softmax) reorders near-equal boxes; the whole trunks 41.5
(93 ms); the trunks without their first and last convolutions 42.0 (96 ms), the rule below; one
trunk alone is no faster than fp32 (137 and 229 ms: the mixed graph loses ONNX Runtime's fp32
layout optimisations around it); 64 calibration images instead of 24 change nothing (41.6)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from repmet.errors import UserError
from repmet.export.formats.int8.quantize import quantize_graph

# node names of an EfficientNet-Lite trunk in the exported graphs (its module names, as torch.onnx writes them)
TRUNK_NODE = re.compile(r"/backbone/(_blocks\.\d+|Clip)")
CALIBRATION_IMAGES = 24  # each runs the whole detection graph; 24 cover the activation ranges (min-max)
BOXES_PER_IMAGE = 4


def export_detector_int8(trained, folder: Path, calibration: str | None, data_root: str | None) -> dict:
    detection_feeds, embedding_feeds, described = _calibration_feeds(trained, calibration, data_root)
    settings = {}
    for role, feeds in (("detection", detection_feeds), ("box_embedding", embedding_feeds)):
        settings = quantize_graph(folder / f"{role}.onnx", folder / f"{role}_int8.onnx", feeds,
                                  lambda name: TRUNK_NODE.search(name) is not None)
    return {"detection": "detection_int8.onnx", "box_embedding": "box_embedding_int8.onnx",
            "calibration": {"images": len(detection_feeds), "source": described, "quantized": "EfficientNet-Lite blocks",
                            **settings}}


def _calibration_feeds(trained, calibration: str | None, data_root: str | None) -> tuple[list[dict], list[dict], str]:
    """The graphs' inputs on real training images (the trained gallery as the representatives, each
    image's first boxes for the box-embedding graph)."""
    from repmet.methods.detector import load_detection_split
    from repmet.runtime.detection_preprocess import prepare_detection_file

    config = trained.config
    if calibration:
        raise UserError("--calibration takes a folder of images for classifiers; a detector is calibrated on its "
                        "training split's boxed images (pass --data-root DIR to say where they are)")
    if data_root:
        config.data.root = data_root
    try:
        split = load_detection_split(config, config.data.train_split)
    except UserError as exc:
        raise UserError(f"int8 calibration needs the detector's training images ({exc}); pass --data-root DIR") from None
    spec = trained.preprocess
    reps = trained.gallery.representatives.numpy().astype(np.float32)
    picks = np.unique(np.linspace(0, len(split) - 1, min(CALIBRATION_IMAGES, len(split))).round().astype(int))
    detection, embedding = [], []
    for index in picks:
        image = split.images[index]
        prepared = prepare_detection_file(image.path, spec)
        detection.append({"image": prepared.tensor, "image_size": prepared.image_size, "representatives": reps})
        if len(image.boxes):
            boxes = prepared.to_resized(np.asarray(image.boxes[:BOXES_PER_IMAGE], np.float32))
            embedding.append({"image": prepared.tensor, "boxes": np.ascontiguousarray(boxes, np.float32)})
    return detection, embedding, f"{len(picks)} images of {split.description}"
