"""Opening images the same way everywhere: any mode in, 8-bit RGB out, or a named error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from repmet.errors import UserError

MAX_PIXELS = 80_000_000  # refuse decompression bombs before they exhaust memory


def open_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` to RGB: grayscale, palette, RGBA (on black), CMYK and 16-bit images
    are converted as in training."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise UserError(f"image {path} is {image.width}x{image.height}, more than {MAX_PIXELS} pixels; "
                                f"resize it before use")
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot decode image {path}: {exc}; replace or remove the file") from None


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / scale * 255.0, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")
