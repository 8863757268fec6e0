"""The detector's preprocessing without torch, the same arithmetic as torchvision's
``GeneralizedRCNNTransform``: scale so that the shorter side is ``min_size`` unless the longer
would pass ``max_size``, bilinear resize (half-pixel centres, no antialiasing, as
``F.interpolate(..., recompute_scale_factor=True)``), normalise, and zero-pad at the bottom and
right to the square canvas that the exported graph takes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from repmet.preprocess_spec import detection_canvas_size


def resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return int(math.floor(height * scale)), int(math.floor(width * scale))


def _bilinear_axis(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (low, high) and the high row's weight for each output row."""
    source = np.maximum((np.arange(size_out, dtype=np.float32) + 0.5) * np.float32(size_in / size_out) - 0.5, 0.0)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (source - low).astype(np.float32)


@dataclass(frozen=True)
class PreparedImage:
    tensor: np.ndarray  # [1, 3, S, S] float32
    image_size: np.ndarray  # [2] float32: the resized height and width inside the canvas
    original_size: tuple[int, int]  # (height, width) of the image as given

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes in the resized image's pixels -> the original image's (torchvision's ``resize_boxes``)."""
        ratio_h = np.float32(self.original_size[0]) / self.image_size[0]
        ratio_w = np.float32(self.original_size[1]) / self.image_size[1]
        return boxes * np.array([ratio_w, ratio_h, ratio_w, ratio_h], np.float32)

    def to_resized(self, boxes: np.ndarray) -> np.ndarray:
        ratio_h = self.image_size[0] / np.float32(self.original_size[0])
        ratio_w = self.image_size[1] / np.float32(self.original_size[1])
        return np.asarray(boxes, np.float32) * np.array([ratio_w, ratio_h, ratio_w, ratio_h], np.float32)


def prepare_detection_file(path, spec) -> PreparedImage:
    """The image file ``path`` as the detection graph takes it; ``spec``: a detector's preprocessing
    (``min_size``, ``max_size``, ``mean``, ``std``)."""
    from repmet.imaging import open_rgb

    return prepare_detection_image(np.asarray(open_rgb(path)), spec.min_size, spec.max_size, spec.mean, spec.std)


def prepare_detection_image(rgb: np.ndarray, min_size: int, max_size: int, mean, std) -> PreparedImage:
    """``rgb [H, W, 3]`` uint8 -> the graph's input.

    The same numbers as normalising the whole image and then resizing it, computed only on the
    rows the bilinear resize reads: a 8900 x 8900 photo never exists as float32 (3 GB)."""
    height, width = rgb.shape[:2]
    new_height, new_width = resized_size(height, width, min_size, max_size)
    mean = np.asarray(mean, np.float32)[:, None, None]
    std = np.asarray(std, np.float32)[:, None, None]

    def normalised(rows: np.ndarray) -> np.ndarray:  # uint8 [n, W, 3] -> float32 [3, n, W]
        return (rows.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0) - mean) / std

    top, bottom, wy = _bilinear_axis(height, new_height)
    left, right, wx = _bilinear_axis(width, new_width)
    rows = normalised(rgb[top]) * (1 - wy)[None, :, None] + normalised(rgb[bottom]) * wy[None, :, None]
    resized = rows[:, :, left] * (1 - wx)[None, None, :] + rows[:, :, right] * wx[None, None, :]
    side = detection_canvas_size(max_size)
    canvas = np.zeros((1, 3, side, side), np.float32)
    canvas[0, :, :new_height, :new_width] = resized
    return PreparedImage(canvas, np.array([new_height, new_width], np.float32), (height, width))
