"""What ``metric-serve`` is started with, in one place (the CLI fills it, tests build it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024  # a request: a few images of a few MB, base64'd
DEFAULT_MAX_IMAGES = 64  # per request


@dataclass(frozen=True)
class ServeSettings:
    artifact: Path
    gallery: Path | None = None  # the gallery file: loaded at start, every change saved to it first
    backend: str = "auto"
    device: str = "cpu"
    threads: int = 0
    token: str | None = None  # bearer token; None: no authentication (bind to loopback then)
    max_batch: int = 32  # images embedded together
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_queue: int = 256  # images waiting; beyond, 503 with Retry-After
    request_timeout_s: float = 30.0  # a request not answered by then gets 504
    body_timeout_s: float = 10.0  # a client that has not sent its whole body by then gets 408
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_images: int = DEFAULT_MAX_IMAGES
    cors_origins: tuple[str, ...] = ()  # none: no CORS headers at all
