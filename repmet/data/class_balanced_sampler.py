"""Class-balanced batches: M classes x D images each (the ``_12_4`` of the RepMet configs)."""

from __future__ import annotations

import numpy as np

from repmet.errors import UserError


class ClassBalancedSampler:
    """Batch ``step`` of ``epoch`` is drawn from a generator seeded by ``(seed, epoch, step)``,
    like the episode sampler: resumable without saved state. D distinct images of each class,
    or all of a smaller class's images and repeats."""

    def __init__(self, labels: np.ndarray, classes_per_batch: int, images_per_class: int, seed: int,
                 description: str = "the training split") -> None:
        self.by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
        if classes_per_batch > len(self.by_class):
            raise UserError(f"batch.classes ({classes_per_batch}) exceeds the {len(self.by_class)} classes of "
                            f"{description}; lower batch.classes")
        self.classes = np.array(sorted(self.by_class))
        self.m, self.d, self.seed = classes_per_batch, images_per_class, seed

    def batch(self, epoch: int, step: int) -> np.ndarray:
        """Indices ``[M * D]`` into the split, class-major."""
        rng = np.random.default_rng([self.seed, epoch, step])
        chosen = rng.choice(self.classes, size=self.m, replace=False)
        return np.concatenate([_draw(rng, self.by_class[int(c)], self.d) for c in chosen])


def _draw(rng: np.random.Generator, members: np.ndarray, count: int) -> np.ndarray:
    """``count`` distinct members, or, from a smaller class (user data is rarely balanced), every
    member once and the rest repeats."""
    if len(members) >= count:
        return rng.choice(members, size=count, replace=False)
    return np.concatenate([rng.permutation(members), rng.choice(members, size=count - len(members))])
