"""Class-balanced batches: M classes x D images each (the ``_12_4`` of the RepMet configs)."""

from __future__ import annotations

import numpy as np

from repmet.errors import UserError


class ClassBalancedSampler:
    """Batch ``step`` of ``epoch`` is drawn from a generator seeded by ``(seed, epoch, step)``,
    like the episode sampler: resumable without saved state."""

    def __init__(self, labels: np.ndarray, classes_per_batch: int, images_per_class: int, seed: int,
                 class_names: list[str] | None = None, description: str = "the training split") -> None:
        self.by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
        if classes_per_batch > len(self.by_class):
            raise UserError(f"batch.classes ({classes_per_batch}) exceeds the {len(self.by_class)} classes of "
                            f"{description}; lower batch.classes")
        small = [c for c, idx in self.by_class.items() if len(idx) < images_per_class]
        if small:
            name = class_names[small[0]] if class_names else small[0]
            raise UserError(
                f"class {name!r} of {description} has {len(self.by_class[small[0]])} images, fewer than "
                f"batch.per_class = {images_per_class} ({len(small)} classes are that small); lower batch.per_class")
        self.classes = np.array(sorted(self.by_class))
        self.m, self.d, self.seed = classes_per_batch, images_per_class, seed

    def batch(self, epoch: int, step: int) -> np.ndarray:
        """Indices ``[M * D]`` into the split, class-major."""
        rng = np.random.default_rng([self.seed, epoch, step])
        chosen = rng.choice(self.classes, size=self.m, replace=False)
        return np.concatenate([rng.choice(self.by_class[int(c)], size=self.d, replace=False) for c in chosen])
