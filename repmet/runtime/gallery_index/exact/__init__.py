"""Exact search: the artifact's distance head (the graph export verified against PyTorch, run by
the chosen backend) over every representative. The default, and the reference an approximate
index's recall is measured against."""

from __future__ import annotations

import numpy as np

from repmet.runtime.gallery_index import GALLERY_INDEXES, GalleryIndex


@GALLERY_INDEXES.register("exact")
class ExactIndex(GalleryIndex):
    name = "exact"

    def posteriors(self, embeddings: np.ndarray) -> np.ndarray:
        return self.head.run(embeddings, self.gallery.representatives)[1]
