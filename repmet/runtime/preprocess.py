"""The evaluation transform of training, in numpy and Pillow (no torch), driven by the
artifact's ``preprocess`` metadata so that every runtime prepares images identically."""

from __future__ import annotations

import numpy as np
from PIL import Image

from repmet.imaging import ImageInput, open_image
from repmet.preprocess_spec import INTERPOLATIONS, PreprocessSpec

_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "lanczos": Image.Resampling.LANCZOS,
               "bicubic": Image.Resampling.BICUBIC}
assert set(_RESAMPLING) == set(INTERPOLATIONS)


def preprocess(image: ImageInput, spec: PreprocessSpec, name: str | None = None) -> np.ndarray:
    """One image -> float32 ``[channels, crop, crop]``, as the training evaluation saw it."""
    picture = open_image(image, spec.color, name)
    picture = _resize(picture, spec)
    picture = _center_crop(picture, spec.crop)
    raw = np.asarray(picture, dtype=np.uint8)
    if spec.invert:  # training stores 255 - x as uint8, then divides by 255
        raw = 255 - raw
    pixels = raw.astype(np.float32) / np.float32(255.0)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    pixels = pixels.transpose(2, 0, 1)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((pixels - mean) / std, dtype=np.float32)


def preprocess_batch(images: list[ImageInput], spec: PreprocessSpec, names: list[str] | None = None) -> np.ndarray:
    names = names or [None] * len(images)
    return np.stack([preprocess(image, spec, name) for image, name in zip(images, names)])


def _resize(image: Image.Image, spec: PreprocessSpec) -> Image.Image:
    if spec.resize == "exact":
        size = (spec.resize_to, spec.resize_to)
    else:  # torchvision: the shorter side becomes resize_to, the longer one int(resize_to * long / short)
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = spec.resize_to, int(spec.resize_to * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
    if image.size == size:
        return image
    return image.resize(size, _RESAMPLING[spec.interpolation])


def _center_crop(image: Image.Image, crop: int) -> Image.Image:
    w, h = image.size
    if w < crop or h < crop:  # torchvision pads with zeros; so do we
        canvas = Image.new(image.mode, (max(w, crop), max(h, crop)))
        canvas.paste(image, ((max(w, crop) - w) // 2, (max(h, crop) - h) // 2))
        image, (w, h) = canvas, canvas.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    return image.crop((left, top, left + crop, top + crop))
