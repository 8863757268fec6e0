"""What the embedding head is fed: cached backbone features, or images through the backbone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from repmet.data.feature_cache import cached_features
from repmet.imaging import open_rgb
from repmet.data.transforms import CACHE_VIEWS, TransformSpec, is_cacheable_view
from repmet.errors import UserError

EVAL_CHUNK = 256  # cached inputs per forward at evaluation: activation maps of a whole split do not fit at once


class CachedFeatureSource:
    """Frozen backbone (or frozen bottom blocks): what ``backbone.cached_part`` computes for
    every image in every view is computed once (and kept on disk across runs); a training
    sample takes one of its views at random."""

    uses_backbone = False

    def __init__(self, backbone: torch.nn.Module, identity: str, spec: TransformSpec, views: list[str],
                 device: torch.device, progress: bool) -> None:
        unknown = [v for v in views if not is_cacheable_view(v)]
        if unknown or not views:
            raise UserError(f"data.cache_views {views} must be a non-empty list from {list(CACHE_VIEWS)} (add "
                            f"augmented views with data.cache_random_views: N)")
        self.backbone, self.identity, self.spec, self.views = backbone, identity, spec, views
        self.device, self.progress = device, progress
        self.train_bank: torch.Tensor | None = None
        # Validation re-embeds the same images every epoch: keep their features in memory
        # rather than re-reading the disk cache each time.
        self._in_memory: dict[tuple[str, tuple[Path, ...]], torch.Tensor] = {}

    def prepare_training(self, paths: list[Path]) -> None:
        # Only the centre view is kept apart (the training set is embedded with it); the
        # others live in the bank alone, which matters for activation maps (GBs).
        self.train_bank = torch.stack([self._features(paths, v) if v == "center" else self._compute(paths, v)
                                       for v in self.views], dim=1)  # [N, V, ...]

    def training_inputs(self, indices: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        views = rng.integers(len(self.views), size=len(indices))
        return self.train_bank[torch.from_numpy(indices), torch.from_numpy(views)].to(self.device)

    def eval_batches(self, paths: list[Path], batch_size: int = EVAL_CHUNK):
        features = self._features(paths, "center")
        for start in range(0, len(features), batch_size):
            yield features[start : start + batch_size].to(self.device)

    def _compute(self, paths: list[Path], view: str) -> torch.Tensor:
        return cached_features(self.backbone.cached_part, self.identity, paths, self.spec, view, self.device,
                               progress=self.progress)

    def _features(self, paths: list[Path], view: str) -> torch.Tensor:
        key = (view, tuple(paths))
        if key not in self._in_memory:
            self._in_memory[key] = self._compute(paths, view)
        return self._in_memory[key]


class ImageSource:
    """Backbone in the loop (fine-tuning or no cache): images decoded and augmented per batch."""

    uses_backbone = True

    def __init__(self, spec: TransformSpec, device: torch.device) -> None:
        self.spec, self.device = spec, device
        self.train_paths: list[Path] = []
        self.train_transform, self.eval_transform = spec.train_transform(), spec.eval_transform("center")
        self.pool = ThreadPoolExecutor(max_workers=4)

    def prepare_training(self, paths: list[Path]) -> None:
        self.train_paths = paths

    def training_inputs(self, indices: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        torch.manual_seed(int(rng.integers(2**31)))  # augmentation follows the batch seed
        images = list(self.pool.map(lambda i: self.train_transform(open_rgb(self.train_paths[i])), indices))
        return torch.stack(images).to(self.device)

    def eval_batches(self, paths: list[Path], batch_size: int = 64):
        """Eval-transformed images in batches of ``[b, 3, S, S]``."""
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            yield torch.stack(list(self.pool.map(lambda p: self.eval_transform(open_rgb(p)), chunk))).to(self.device)
