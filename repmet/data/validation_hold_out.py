"""A validation split carved out of the training split, for data that comes without one.

Per class, a seeded permutation of its training images (sorted by path, so the choice does
not depend on the file system's order) sends ``round(fraction x n)`` of them to validation,
and never the last one: a class keeps at least one training image. The same images are
chosen on every machine and in every run, so training, evaluation and the benchmarks agree.
"""

from __future__ import annotations

import numpy as np

from repmet.data.labeled_images import LabeledImages

HOLD_OUT_SEED = 0


def split_off_validation(train: LabeledImages, fraction: float) -> tuple[LabeledImages, LabeledImages]:
    """``(training part, validation part)`` of ``train``: disjoint, together all of it."""
    order = np.array(sorted(range(len(train)), key=lambda i: str(train.paths[i])), dtype=np.int64)
    labels = train.labels[order]
    rng = np.random.default_rng(HOLD_OUT_SEED)
    to_val = np.zeros(len(train), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(int(np.floor(fraction * len(members) + 0.5)), len(members) - 1)
        to_val[order[rng.permutation(members)[:count]]] = True
    return (train.subset(~to_val, f"{train.description} without its {fraction:g} validation hold-out"),
            train.subset(to_val, f"{fraction:g} of {train.description}, held out for validation"))
