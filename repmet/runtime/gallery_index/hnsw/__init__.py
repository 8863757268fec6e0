"""Approximate search for large galleries: a faiss HNSW graph over every distinct representative
(``pip install faiss-cpu``, the ``faiss`` extra). A query looks at its ``shortlist`` nearest
representatives; each class found scores its nearest one (as the head's min over K does), the
posterior is the head's softmax over the classes found, and every other class gets 0: the mass
of classes farther than the shortlist's last representative, negligible when the shortlist is
the nearest few dozen (``benchmarks/gallery_scale.py`` measures recall@1 against exact search).

Squared Euclidean artifacts search L2 (faiss returns squared distances, as the head uses);
cosine artifacts search the inner product of unit vectors (d = 1 - x.r)."""

from __future__ import annotations

import numpy as np

from repmet.errors import UserError
from repmet.runtime.gallery_index import GALLERY_INDEXES, GalleryIndex, NearestClasses


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UserError("the hnsw gallery index needs faiss: pip install faiss-cpu (or use index='exact')") from None
    return faiss


@GALLERY_INDEXES.register("hnsw")
class HnswIndex(GalleryIndex):
    name = "hnsw"
    neighbours = 32  # HNSW's M: links per node
    ef_construction = 80
    ef_search = 512  # recall@1 0.995 at 1M representatives, 0.39 ms a query (benchmarks/gallery_scale.py)
    shortlist = 64  # representatives a query looks at

    def __init__(self, gallery, head) -> None:
        super().__init__(gallery, head)
        faiss = _faiss()
        c, k, d = gallery.representatives.shape
        distinct = np.arange(k)[None, :] < np.maximum(gallery.counts, 1)[:, None]  # repeats add nothing
        self.owner = np.repeat(np.arange(c), k)[distinct.reshape(-1)]
        vectors = np.ascontiguousarray(gallery.representatives.reshape(c * k, d)[distinct.reshape(-1)], np.float32)
        self.cosine = head.distance == "cosine"
        if self.cosine:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        metric = faiss.METRIC_INNER_PRODUCT if self.cosine else faiss.METRIC_L2
        self.index = faiss.IndexHNSWFlat(d, self.neighbours, metric)
        self.index.hnsw.efConstruction = self.ef_construction
        self.index.hnsw.efSearch = self.ef_search
        if len(vectors):
            self.index.add(vectors)

    def search(self, embeddings: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances [N, count], representative ids [N, count])``, nearest first (-1: none)."""
        queries = np.ascontiguousarray(embeddings, np.float32)
        if self.cosine:
            queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        scores, ids = self.index.search(queries, min(count, max(self.index.ntotal, 1)))
        return (1.0 - scores if self.cosine else np.maximum(scores, 0.0)), ids

    def nearest(self, embeddings: np.ndarray, top_k: int) -> NearestClasses:
        distances, ids = self.search(embeddings, max(self.shortlist, top_k))
        scale = np.float32(2.0 * self.head.sigma ** 2)
        classes = np.full((len(embeddings), top_k), -1, np.int64)
        posteriors = np.zeros((len(embeddings), top_k), np.float32)
        for row, (dist, rep) in enumerate(zip(distances, ids)):
            found = rep >= 0
            owners = self.owner[rep[found]]
            first = np.unique(owners, return_index=True)[1]  # each class's nearest representative
            first.sort()
            logits = -dist[found][first] / scale
            p = np.exp(logits - logits.max())
            p /= p.sum()
            m = min(top_k, len(first))
            classes[row, :m], posteriors[row, :m] = owners[first][:m], p[:m]
        keep = max(1, min(top_k, len(self.gallery)))
        return NearestClasses(classes[:, :keep], posteriors[:, :keep])

    def posteriors(self, embeddings: np.ndarray) -> np.ndarray:
        found = self.nearest(embeddings, self.shortlist)
        dense = np.zeros((len(embeddings), len(self.gallery)), np.float32)
        for row, (classes, p) in enumerate(zip(found.classes, found.posteriors)):
            dense[row, classes[classes >= 0]] = p[classes >= 0]
        return dense
