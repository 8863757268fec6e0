"""The HNSW graph saved beside its gallery file (``mine.npz`` -> ``mine.hnsw.npz``), so that loading
a large gallery does not rebuild it (78 s at a million representatives).

The file is plain arrays (``.npz``, never pickle, never faiss's own serialisation, whose C++ parser
was not written for files from strangers): the graph's vectors, their classes, and HNSW's link
lists (levels, offsets, neighbours, entry point). Everything is checked before faiss sees it: sizes
against each other and the limits, every neighbour id in range, every node's link count what its
level allows. It is a cache: a file that fails a check, or was made for other vectors, is not used
(the graph is rebuilt), and a graph whose classes changed since is used for the unchanged ones."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from repmet.atomic_write import atomic_write

FORMAT = "repmet-hnsw-1"
MAX_LEVEL = 32  # HNSW levels are ~log(n)/log(M): far below this for any gallery the limits allow


def graph_file(gallery_path: str | Path) -> Path:
    path = Path(gallery_path)
    return path.with_name(path.name.removesuffix(".npz") + ".hnsw.npz")


def save_graph(path: Path, index, vectors: np.ndarray, owner: np.ndarray, labels: tuple[str, ...], metric: str,
               neighbours: int) -> None:
    import faiss

    hnsw = index.hnsw
    arrays = {"format": np.array(FORMAT), "metric": np.array(metric), "neighbours": np.array(neighbours),
              "vectors": vectors, "owner": owner.astype(np.int64), "labels": np.array(labels, dtype=np.str_),
              "levels": faiss.vector_to_array(hnsw.levels), "offsets": faiss.vector_to_array(hnsw.offsets),
              "links": faiss.vector_to_array(hnsw.neighbors),
              "entry": np.array([hnsw.entry_point, hnsw.max_level], np.int64)}
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def load_graph(path: Path, dim: int, metric: str, neighbours: int, max_vectors: int, max_bytes: int):
    """``(faiss index, vectors, owner, labels)`` from ``path``, or None when it is missing, damaged,
    larger than ``max_bytes`` inflated (read from the zip headers before anything is inflated), or
    not a graph of at most ``max_vectors`` ``dim``-d ``metric`` vectors with ``neighbours`` links."""
    if not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            if len(archive.infolist()) > 16 or sum(i.file_size for i in archive.infolist()) > max_bytes:
                return None
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception:  # noqa: BLE001 - numpy raises many kinds on a damaged file; an unreadable cache is rebuilt
        return None
    try:
        return _checked(arrays, dim, metric, neighbours, max_vectors)
    except (KeyError, ValueError, TypeError, IndexError):
        return None


def _checked(arrays: dict, dim: int, metric: str, neighbours: int, max_vectors: int):
    import faiss

    if str(arrays["format"]) != FORMAT or str(arrays["metric"]) != metric or int(arrays["neighbours"]) != neighbours:
        return None
    vectors, owner, labels = arrays["vectors"], arrays["owner"], arrays["labels"]
    levels, offsets, links, entry = arrays["levels"], arrays["offsets"], arrays["links"], arrays["entry"]
    n = len(vectors)
    if (vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != dim or n > max_vectors
            or owner.shape != (n,) or owner.dtype != np.int64 or labels.ndim != 1 or labels.dtype.kind != "U"
            or levels.shape != (n,) or levels.dtype != np.int32 or offsets.shape != (n + 1,)
            or offsets.dtype != np.uint64 or links.ndim != 1 or links.dtype != np.int32 or entry.shape != (2,)):
        return None
    if n and (owner.min() < 0 or owner.max() >= len(labels)) or not np.isfinite(vectors).all():
        return None
    index = faiss.IndexHNSWFlat(dim, neighbours, faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2)
    allowed = faiss.vector_to_array(index.hnsw.cum_nneighbor_per_level).astype(np.int64)  # links up to a level
    if n:
        if levels.min() < 1 or levels.max() > min(MAX_LEVEL, len(allowed) - 1):
            return None
        if offsets[0] != 0 or not np.array_equal(np.diff(offsets.astype(np.int64)), allowed[levels]):
            return None
        if len(links) != int(offsets[-1]) or links.min() < -1 or links.max() >= n:
            return None
        entry_point, max_level = int(entry[0]), int(entry[1])
        if not 0 <= entry_point < n or max_level != int(levels.max()) - 1 or levels[entry_point] - 1 != max_level:
            return None
    elif len(links) or offsets[0] != 0:
        return None
    index.storage.add(vectors)
    faiss.copy_array_to_vector(levels, index.hnsw.levels)
    index.hnsw.offsets.clear()
    faiss.copy_array_to_vector(offsets, index.hnsw.offsets)
    faiss.copy_array_to_vector(links, index.hnsw.neighbors)
    if n:
        index.hnsw.entry_point, index.hnsw.max_level = int(entry[0]), int(entry[1])
    index.ntotal = n
    return index, vectors, owner, tuple(str(x) for x in labels)
