"""The JSON bodies of the service, as pydantic models (FastAPI turns them into the OpenAPI schema
served at ``/openapi.json``). Images travel as base64 strings of their encoded file (JPEG, PNG,
...), so one JSON body carries everything and no multipart parser is needed."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field

from repmet.errors import UserError
from repmet.imaging import open_image_bytes

Base64Image = str  # the bytes of an image file, base64-encoded (standard alphabet, padding optional)


def decode_base64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise UserError(f"{what} is not base64 text; send each image file's bytes base64-encoded") from None
    if not data:
        raise UserError(f"{what} is empty; send an image file's bytes, base64-encoded")
    return data


def decode_images(texts: list[str], field: str) -> list:
    """``field``'s base64 image files -> RGB images, each error naming ``field[i]``."""
    return [open_image_bytes(decode_base64(text, f"{field}[{i}]"), "RGB", f"{field}[{i}]")
            for i, text in enumerate(texts)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BoxedImage(Strict):
    image: Base64Image
    boxes: list[list[float]] = Field(min_length=1, description="[[x1, y1, x2, y2], ...] in the image's pixels")


class EnrollRequest(Strict):
    """A classifier enrolls from ``images``; a detector from ``examples`` (images with boxes)."""

    images: list[Base64Image] | None = Field(None, min_length=1)
    examples: list[BoxedImage] | None = Field(None, min_length=1)

    def count(self) -> int:
        return len(self.images or []) + len(self.examples or [])


class ClassifyRequest(Strict):
    images: list[Base64Image] = Field(min_length=1)
    top_k: int = Field(1, ge=1, le=1000)


class DetectRequest(Strict):
    images: list[Base64Image] = Field(min_length=1)
    score_threshold: float = Field(0.2, ge=0.0, le=1.0)


class Prediction(BaseModel):
    labels: list[str]
    posteriors: list[float]


class ClassifyResponse(BaseModel):
    predictions: list[Prediction]


class DetectedBox(BaseModel):
    box: list[float]
    label: str
    score: float


class DetectResponse(BaseModel):
    detections: list[list[DetectedBox]]


class EnrollResponse(BaseModel):
    label: str
    used: int = Field(description="images (classifier) or boxes (detector) the class was enrolled from")
    classes: int


class ClassCount(BaseModel):
    label: str
    representatives: int


class ClassesResponse(BaseModel):
    task: str
    classes: list[ClassCount]


class RemoveResponse(BaseModel):
    removed: str
    classes: int


class HealthResponse(BaseModel):
    status: str
    task: str
    backend: str
    classes: int
    gallery_version: int


class ErrorResponse(BaseModel):
    error: str
