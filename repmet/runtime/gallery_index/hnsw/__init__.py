"""Approximate search for large galleries: a faiss HNSW graph over every distinct representative
(``pip install faiss-cpu``, the ``faiss`` extra). A query looks at its ``shortlist`` nearest
representatives; each class found scores its nearest one (as the head's min over K does), the
posterior is the head's softmax over the classes found, and every other class gets 0: the mass
of classes farther than the shortlist's last representative, negligible when the shortlist is
the nearest few dozen (``benchmarks/gallery_scale.py`` measures recall@1 against exact search).

Saving a gallery (``save_gallery("mine.npz")``) writes the graph beside it (``mine.hnsw.npz``,
``saved_graph.py``); loading the gallery reads it back instead of building it.

Enrolling and removing do not rebuild the graph (minutes at a million representatives): the
graph built last is shared, read-only, by every later snapshot; a class enrolled or replaced since
is searched exactly in a small delta beside it, and the graph's vectors of a class removed or
replaced since are ignored. When the delta or the ignored part passes ``rebuild_fraction`` of the
graph, the next change builds a new graph.

Squared Euclidean artifacts search L2 (faiss returns squared distances, as the head uses);
cosine artifacts search the inner product of unit vectors (d = 1 - x.r)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from repmet.errors import UserError
from repmet.runtime.gallery_index import GALLERY_INDEXES, GalleryIndex, NearestClasses
from repmet.runtime.gallery_index.hnsw.saved_graph import graph_file, load_graph, save_graph


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UserError("the hnsw gallery index needs faiss: pip install faiss-cpu (or use index='exact')") from None
    return faiss


@dataclass(frozen=True, eq=False)
class _Graph:
    """A built HNSW graph, never modified once built: ``owner[i]`` indexes ``labels``, the classes
    of the gallery it was built from."""

    index: object
    owner: np.ndarray
    labels: tuple[str, ...]

    @cached_property
    def slot(self) -> dict[str, int]:
        """Each label's index in ``labels``."""
        return {label: i for i, label in enumerate(self.labels)}

    @cached_property
    def vectors_per_class(self) -> np.ndarray:
        return np.bincount(self.owner, minlength=len(self.labels))


@GALLERY_INDEXES.register("hnsw")
class HnswIndex(GalleryIndex):
    name = "hnsw"
    neighbours = 32  # HNSW's M: links per node
    ef_construction = 80
    ef_search = 512  # recall@1 0.995 at 1M representatives, 0.39 ms a query (benchmarks/gallery_scale.py)
    shortlist = 64  # representatives a query looks at
    rebuild_fraction = 0.1  # of the graph's vectors: a delta or ignored part above it builds a new graph
    rebuild_minimum = 2048  # representatives: below it the delta is cheap to search exactly anyway

    def __init__(self, gallery, head) -> None:
        super().__init__(gallery, head)
        faiss = _faiss()
        self.cosine = head.distance == "cosine"
        vectors, owner = self._vectors(range(len(gallery)))
        index = faiss.IndexHNSWFlat(gallery.representatives.shape[2], self.neighbours,
                                    faiss.METRIC_INNER_PRODUCT if self.cosine else faiss.METRIC_L2)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        if len(vectors):
            index.add(vectors)
        self.graph = _Graph(index, owner, tuple(gallery.labels))
        self.ignored: frozenset[str] = frozenset()  # graph classes removed or replaced since it was built
        self.delta_labels: frozenset[str] = frozenset()  # classes searched exactly beside the graph
        self._snapshot_maps()

    @classmethod
    def load_or_build(cls, gallery, head, saved=None) -> "HnswIndex":
        if saved is not None:
            restored = cls._restored(gallery, head, graph_file(saved))
            if restored is not None:
                return restored
        return cls(gallery, head)

    def save_alongside(self, gallery_path) -> None:
        n, d = self.graph.index.ntotal, self.gallery.representatives.shape[2]
        vectors = self.graph.index.reconstruct_n(0, n) if n else np.zeros((0, d), np.float32)
        save_graph(graph_file(gallery_path), self.graph.index, vectors, self.graph.owner, self.graph.labels,
                   "ip" if self.cosine else "l2", self.neighbours)

    @classmethod
    def _restored(cls, gallery, head, path) -> "HnswIndex | None":
        """The graph saved at ``path``, serving ``gallery``: its classes whose vectors are still the
        gallery's are searched in it, the others exactly; None (build anew) when there is no usable
        file or too little of it still holds."""
        cosine = head.distance == "cosine"
        c, k, d = gallery.representatives.shape
        # a graph of this gallery holds at most its vectors (plus those of classes removed since: 10% before a
        # rebuild) and about 2M links each; anything larger is not this gallery's graph
        max_vectors = int(c * k * (1 + cls.rebuild_fraction)) + cls.rebuild_minimum
        max_bytes = max_vectors * (4 * d + 8 * 4 * cls.neighbours + 64) + 2**20
        loaded = load_graph(path, d, "ip" if cosine else "l2", cls.neighbours, max_vectors, max_bytes)
        if loaded is None:
            return None
        index, vectors, owner, labels = loaded
        index.hnsw.efConstruction, index.hnsw.efSearch = cls.ef_construction, cls.ef_search
        new = object.__new__(cls)
        GalleryIndex.__init__(new, gallery, head)
        new.cosine, new.graph = cosine, _Graph(index, owner, labels)
        current = {label: i for i, label in enumerate(gallery.labels)}
        at = np.array([current.get(label, -1) for label in labels], np.int64)  # each graph class in the gallery
        position = at[owner]
        first = np.full(len(labels), len(owner), np.int64)
        np.minimum.at(first, owner, np.arange(len(owner)))
        slot = np.arange(len(owner)) - first[owner]
        usable = (position >= 0) & (slot >= 0) & (slot < k)
        same = np.zeros(len(owner), bool)
        if usable.any():
            now = gallery.representatives[position[usable], slot[usable]].astype(np.float32)
            if cosine:
                now /= np.maximum(np.linalg.norm(now, axis=1, keepdims=True), 1e-12)
            same[usable] = (now == vectors[usable]).all(axis=1) & (slot[usable] < gallery.counts[position[usable]])
        per_class = new.graph.vectors_per_class
        intact = (np.bincount(owner, weights=same, minlength=len(labels)) == per_class) & (per_class > 0) & (at >= 0)
        intact[intact] &= gallery.counts[at[intact]] == per_class[intact]  # no representative added since
        kept = {label for label, ok in zip(labels, intact) if ok}
        new.ignored = frozenset(set(labels) - kept)
        new.delta_labels = frozenset(set(gallery.labels) - kept)
        # a graph mostly of other vectors (another gallery's, or one changed a lot since) is not worth keeping
        stale = int((~intact[owner]).sum())
        if stale > cls.rebuild_fraction * index.ntotal or len(new.delta_labels) * k > max(
                cls.rebuild_minimum, cls.rebuild_fraction * index.ntotal):
            return None
        new._snapshot_maps()
        return new

    def _vectors(self, classes) -> tuple[np.ndarray, np.ndarray]:
        """The distinct representatives of ``classes`` (indices into the gallery; repeats of a class
        with fewer shots than K add nothing), unit length for cosine, and their class indices."""
        reps, counts = self.gallery.representatives, self.gallery.counts
        classes = np.asarray(list(classes), np.int64)
        k, d = reps.shape[1], reps.shape[2]
        if len(classes) == 0:
            return np.zeros((0, d), np.float32), np.zeros(0, np.int64)
        distinct = np.arange(k)[None, :] < np.maximum(counts[classes], 1)[:, None]
        vectors = np.ascontiguousarray(reps[classes].reshape(-1, d)[distinct.reshape(-1)], np.float32)
        owner = np.repeat(classes, k)[distinct.reshape(-1)]
        if self.cosine:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors, owner

    def _snapshot_maps(self) -> None:
        """This snapshot's view of the shared graph (graph class -> gallery class, -1: ignored or
        gone) and its exact delta."""
        position = {label: i for i, label in enumerate(self.gallery.labels)}
        self.graph_to_class = np.array([-1 if label in self.ignored else position.get(label, -1)
                                        for label in self.graph.labels] + [-1], np.int64)  # [-1]: faiss's "none"
        self.delta_vectors, self.delta_owner = self._vectors(sorted(position[label] for label in self.delta_labels))

    def updated(self, gallery, changed: set[str]) -> "HnswIndex":
        # set work over the changed labels only: a million-class gallery is never scanned in Python here
        ignored = self.ignored | {label for label in changed if label in self.graph.slot}
        delta = (self.delta_labels - set(changed)) | {label for label in changed if label in gallery.labels}
        limit = max(self.rebuild_minimum, self.rebuild_fraction * self.graph.index.ntotal)
        k = gallery.representatives.shape[1]
        ignored_vectors = sum(int(self.graph.vectors_per_class[self.graph.slot[label]]) for label in ignored)
        if len(delta) * k > limit or ignored_vectors > limit:
            return HnswIndex(gallery, self.head)
        new = copy.copy(self)  # shares the graph; the maps below are its own
        new.gallery, new.ignored, new.delta_labels = gallery, frozenset(ignored), frozenset(delta)
        if len(changed) == 1:
            new._follow(self, next(iter(changed)))
        else:
            new._snapshot_maps()
        return new

    def _follow(self, previous: "HnswIndex", label: str) -> None:
        """This snapshot's maps from ``previous``'s after one change of ``label`` (enrolled, replaced: moved to the
        end, or removed): array arithmetic over the graph, no loop over the gallery's classes (a million of them)."""
        graph_to_class = previous.graph_to_class.copy()
        owner, vectors = previous.delta_owner, previous.delta_vectors
        if label in previous.gallery.labels:  # its old position goes, every class after it moves up one
            at = previous.gallery.labels.index(label)
            if label in self.graph.slot:
                graph_to_class[self.graph.slot[label]] = -1
            graph_to_class[graph_to_class > at] -= 1
            keep = owner != at
            owner, vectors = owner[keep], vectors[keep]
            owner = np.where(owner > at, owner - 1, owner)
        if label in self.delta_labels:  # enrolled or replaced: now the gallery's last class, searched exactly
            added, added_owner = self._vectors([len(self.gallery) - 1])
            owner, vectors = np.concatenate([owner, added_owner]), np.concatenate([vectors, added])
        self.graph_to_class, self.delta_owner, self.delta_vectors = graph_to_class, owner, vectors

    def search(self, embeddings: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances [N, count], gallery class of each [N, count])``, nearest first (-1: none)."""
        queries = np.ascontiguousarray(embeddings, np.float32)
        if self.cosine:
            queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        scores, ids = self.graph.index.search(queries, min(count, max(self.graph.index.ntotal, 1)))
        distances = 1.0 - scores if self.cosine else np.maximum(scores, 0.0)
        owner = np.append(self.graph.owner, len(self.graph.labels))  # id -1 -> the "none" slot
        classes = self.graph_to_class[owner[ids]]
        distances = np.where(classes >= 0, distances, np.inf)
        if len(self.delta_vectors):
            if self.cosine:
                exact = 1.0 - queries @ self.delta_vectors.T
            else:
                exact = np.maximum((queries ** 2).sum(1)[:, None] + (self.delta_vectors ** 2).sum(1)[None, :]
                                   - 2.0 * queries @ self.delta_vectors.T, 0.0)
            distances = np.concatenate([distances, exact], axis=1)
            classes = np.concatenate([classes, np.broadcast_to(self.delta_owner, exact.shape)], axis=1)
        order = np.argsort(distances, axis=1, kind="stable")[:, :count]
        distances, classes = np.take_along_axis(distances, order, 1), np.take_along_axis(classes, order, 1)
        return distances, np.where(np.isfinite(distances), classes, -1)

    def nearest(self, embeddings: np.ndarray, top_k: int) -> NearestClasses:
        distances, owners_found = self.search(embeddings, max(self.shortlist, top_k))
        scale = np.float32(2.0 * self.head.sigma ** 2)
        classes = np.full((len(embeddings), top_k), -1, np.int64)
        posteriors = np.zeros((len(embeddings), top_k), np.float32)
        for row, (dist, owner) in enumerate(zip(distances, owners_found)):
            found = owner >= 0
            owners = owner[found]
            first = np.unique(owners, return_index=True)[1]  # each class's nearest representative
            first.sort()
            if len(first) == 0:
                continue
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
