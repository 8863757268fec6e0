"""``index="auto"``: exact search while the gallery is small, the ``hnsw`` graph once it holds
``threshold`` representatives or more (and faiss is installed), decided again at every change.

The threshold is where approximate search starts to pay, measured by ``benchmarks/gallery_scale.py``
on a 2-core CPU (256-d, K = 1, ms per query; benchmarks/results/gallery_scale.md): at batch 1 exact
search costs 0.11 / 0.47 / 1.7 ms at 1,000 / 3,000 / 10,000 representatives against the graph's
0.14-0.17 ms (crossover near 1,500); at batch 32, 0.009 / 0.028 / 0.099 ms against 0.08-0.10 (crossover
near 10,000). 5,000 sits between them; below it exact search costs under a millisecond, is exact and
needs no build. Subclass and set ``threshold`` (and register the subclass) for another machine."""

from __future__ import annotations

import importlib.util

from repmet.runtime.gallery_index import GALLERY_INDEXES, GalleryIndex

THRESHOLD = 5000  # representatives


@GALLERY_INDEXES.register("auto")
class AutoIndex(GalleryIndex):
    name = "auto"
    threshold = THRESHOLD

    def __init__(self, gallery, head, chosen=None) -> None:
        super().__init__(gallery, head)
        self.chosen = chosen or GALLERY_INDEXES.get(self.choice(gallery))(gallery, head)

    @classmethod
    def load_or_build(cls, gallery, head, saved=None):
        return cls(gallery, head, GALLERY_INDEXES.get(cls.choice(gallery)).load_or_build(gallery, head, saved))

    def save_alongside(self, gallery_path) -> None:
        self.chosen.save_alongside(gallery_path)

    @classmethod
    def choice(cls, gallery) -> str:
        size = int(gallery.counts.clip(min=1).sum()) if len(gallery) else 0
        large = size >= cls.threshold and importlib.util.find_spec("faiss") is not None
        return "hnsw" if large else "exact"

    def nearest(self, embeddings, top_k):
        return self.chosen.nearest(embeddings, top_k)

    def posteriors(self, embeddings):
        return self.chosen.posteriors(embeddings)

    def updated(self, gallery, changed):
        if self.choice(gallery) != self.chosen.name:
            return AutoIndex(gallery, self.head)
        return AutoIndex(gallery, self.head, self.chosen.updated(gallery, changed))
