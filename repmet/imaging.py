"""Opening images the same way in training and in the runtime: any mode in, 8-bit RGB or
grayscale out, or an error that names the image. Needs only numpy and Pillow (the runtime
imports it without torch).

One orientation rule everywhere (training data, Python and C++ runtimes): an image is what an
image viewer shows, so a JPEG's EXIF Orientation tag is applied when it is decoded, and boxes
given for it and detections returned for it are in the viewer's pixels."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from repmet.errors import UserError
from repmet.limits import MAX_PIXELS  # refuse decompression bombs before they exhaust memory
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}  # what folders of images may hold

ImageInput = Union[str, Path, Image.Image, np.ndarray]
ORIENTATION_TAG = 0x0112  # EXIF
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")  # Pillow's modes of 16-bit grayscale files ("I": 32-bit)


def images_under(folder: str | Path) -> list[Path]:
    """Every image file anywhere under ``folder``, sorted (empty when it is not a folder)."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def open_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` to RGB: grayscale, palette, RGBA (on black), CMYK and 16-bit images
    are converted as in training."""
    return open_image(path, "RGB")


def open_image(source: ImageInput, mode: str = "RGB", name: str | None = None) -> Image.Image:
    """A path, a PIL image or a uint8/uint16 array ``[H, W]``, ``[H, W, 3]`` or ``[H, W, 4]``,
    as an 8-bit ``mode`` ("RGB" or "L") image. ``name`` is what errors call the image."""
    if isinstance(source, (str, Path)):
        return _open_path(Path(source), mode)
    name = name or f"<{type(source).__name__}>"
    if isinstance(source, np.ndarray):
        source = _array_to_pil(source, name)
    if not isinstance(source, Image.Image):
        raise UserError(f"image {name}: expected a file path, a PIL image or a uint8 array, got "
                        f"{type(source).__name__}")
    _check_size(source, name)
    return convert(upright(source), mode)


def _open_path(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            _check_size(image, str(path))
            image.load()
            return convert(upright(image), mode)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot decode image {path}: {exc}; replace or remove the file") from None


def open_image_bytes(data: bytes, mode: str = "RGB", name: str = "<bytes>") -> Image.Image:
    """An encoded image file's bytes (as an HTTP client sends them) -> an 8-bit ``mode`` image,
    with the same checks as a file: its size is read from the header and refused before any
    pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_size(image, name)
            image.load()
            return convert(upright(image), mode)
    except UnidentifiedImageError:
        raise UserError(f"image {name} is not an image file Pillow can read; send a JPEG, PNG, BMP, WebP or TIFF "
                        f"file") from None
    except (OSError, Image.DecompressionBombError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot decode image {name}: {str(exc)[:200]}; send a whole JPEG, PNG, BMP, WebP or TIFF "
                        f"file") from None


def upright(image: Image.Image) -> Image.Image:
    """``image`` as a viewer shows it: its EXIF Orientation (2..8) applied, the tag removed."""
    if image.getexif().get(ORIENTATION_TAG, 1) in (1, None):
        return image  # the common case: no copy
    return ImageOps.exif_transpose(image)


def _check_size(image: Image.Image, name: str) -> None:
    if image.width == 0 or image.height == 0:  # nothing to resize or classify
        raise UserError(f"image {name} is empty ({image.width}x{image.height} pixels); give an image with pixels")
    if image.width * image.height > MAX_PIXELS:
        raise UserError(f"image {name} is {image.width}x{image.height}, more than {MAX_PIXELS} pixels; "
                        f"resize it before use")


def _array_to_pil(array: np.ndarray, name: str) -> Image.Image:
    if array.ndim in (2, 3) and 0 in array.shape[:2]:
        raise UserError(f"image {name} is empty (array shape {array.shape}); give an image with pixels")
    if array.dtype == np.uint16:
        array = sixteen_to_eight_bits(array)
    if array.dtype != np.uint8:
        raise UserError(f"image {name}: arrays must be uint8 (or uint16), got {array.dtype}; "
                        f"convert floats with (x * 255).round().astype('uint8')")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array, mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array), mode="RGB" if array.shape[2] == 3 else "RGBA")
    raise UserError(f"image {name}: array shape {array.shape} is not [H, W], [H, W, 3] or [H, W, 4]")


def sixteen_to_eight_bits(pixels: np.ndarray) -> np.ndarray:
    """The one 16-bit rule, for files and arrays alike: the full range 0..65535 maps onto 0..255
    (as tools that do not guess from the content do; a dark image stays dark), rounded."""
    scaled = np.clip(pixels.astype(np.float64), 0, 65535) * (255.0 / 65535.0)
    return np.round(scaled).astype(np.uint8)


def convert(image: Image.Image, mode: str = "RGB") -> Image.Image:
    """16-bit scaled to 8 bits, transparency composited on black, then ``mode``."""
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    if image.mode in SIXTEEN_BIT_MODES:
        image = Image.fromarray(sixteen_to_eight_bits(np.asarray(image)), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return image.convert(mode)


def as_image_list(images) -> list:
    """One image (a path, a PIL image or an array) or a batch ``[N, H, W, C]`` or an iterable of
    images -> a list of images."""
    if isinstance(images, np.ndarray) and images.ndim == 4:  # a batch [N, H, W, C]
        return list(images)
    if isinstance(images, (str, Path, np.ndarray)) or hasattr(images, "mode"):  # one image
        return [images]
    if isinstance(images, Iterable):
        return list(images)
    raise UserError(f"expected an image or a list of images, got {type(images).__name__}")


def image_name(image: ImageInput, index: int) -> str:
    """What errors call image ``index`` of a call: its path, or its position and type."""
    return str(image) if isinstance(image, (str, Path)) else f"#{index} ({type(image).__name__})"
