"""Galleries of 10k / 100k / 1M representatives: exact search (the numpy head, as the runtime's
exact index computes it) against the hnsw index (faiss), per-query latency at batch 1 and 32,
build time, memory, and recall@1 (the same top-1 class as exact search).

    python benchmarks/gallery_scale.py --artifact FLOWERS_ARTIFACT [--sizes 10000,100000,1000000]
        [--images 2000] [--queries 200] [--json OUT]

The embeddings are real and then augmented: --images Flowers 102 images are embedded by the
artifact (EfficientNet-Lite0, 1280-d), reduced to 256-d by PCA fitted on them and L2-normalised;
the gallery's representatives are those real embeddings plus Gaussian noise (each a jittered copy
of a real one, cosine about 0.9 to it, renormalised), one class per representative (K = 1), so
every real embedding has size / images near-duplicates around it, as a gallery of many views of
related products or faces has; queries are held-out real images' embeddings."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from repmet.data import default_data_root
from repmet.limits import MAX_CLASSES
from repmet.runtime import FewShotClassifier
from repmet.runtime.backends.base import numpy_head

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_bench import timings  # noqa: E402

DIM = 256
NOISE = 0.03  # per dimension, on unit vectors of 256-d: cos(real, jittered) about 0.9


def real_embeddings(artifact: str, images: int, queries: int, data_root: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted((data_root / "flowers-102" / "jpg").glob("*.jpg"))
    chosen = random.Random(0).sample(files, images + queries)
    classifier = FewShotClassifier.load(artifact, backend="onnxruntime")
    embeddings = classifier.embed(chosen)
    mean = embeddings[:images].mean(0)
    _, _, vt = np.linalg.svd(embeddings[:images] - mean, full_matrices=False)
    reduced = (embeddings - mean) @ vt[:DIM].T
    reduced /= np.linalg.norm(reduced, axis=1, keepdims=True)
    return reduced[:images].astype(np.float32), reduced[images:].astype(np.float32)


def gallery_of(real: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    reps = real[np.arange(size) % len(real)] + rng.normal(0, NOISE, (size, DIM)).astype(np.float32)
    reps /= np.linalg.norm(reps, axis=1, keepdims=True)
    return reps[:, None, :]  # [C, K = 1, D]


def timed(run) -> float:
    """Median seconds per call (runtime_bench's timing loop: at least 2 s, 20 to 200 calls)."""
    return float(np.median(timings(run, warmup=1, runs=20, min_seconds=2.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default=str(128), help="HNSW efSearch values to measure, e.g. 128,512")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import faiss

    from repmet.artifact.gallery_file import Gallery
    from repmet.runtime.gallery_index import HeadSpec
    from repmet.runtime.gallery_index.hnsw import HnswIndex

    real, queries = real_embeddings(args.artifact, args.images, args.queries, Path(args.data_root or
                                                                                  default_data_root()))
    rng = np.random.default_rng(0)
    sigma = 0.5
    head = HeadSpec(lambda e, r: numpy_head(e, r, "sqeuclidean", sigma), "sqeuclidean", sigma)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        reps = gallery_of(real, size, rng)
        gallery = Gallery(tuple(f"c{i}" for i in range(size)), reps, np.ones(size, np.int64), "0" * 64)
        flat = reps[:, 0, :]
        exact_top1 = np.concatenate([(q @ flat.T).argmax(1) for q in np.array_split(queries, 8)])

        def exact(batch):  # the exact index's arithmetic: all distances, then the best class
            return numpy_head(queries[:batch], reps, "sqeuclidean", sigma)[1].argmax(1)

        start = time.perf_counter()
        index = HnswIndex(gallery, head)
        build_s = time.perf_counter() - start
        exact_ms = (1e3 * timed(lambda: exact(1)), 1e3 * timed(lambda: exact(32)) / 32)
        for ef in (int(e) for e in args.ef_search.split(",")):
            index.graph.index.hnsw.efSearch = ef
            found = index.nearest(queries, 1).classes[:, 0]
            row = {"representatives": size, "ef_search": ef, "build_s": build_s,
                   "recall_at_1": float(np.mean(found == exact_top1)),
                   "exact_ms_1": exact_ms[0], "exact_ms_32": exact_ms[1],
                   "hnsw_ms_1": 1e3 * timed(lambda: index.nearest(queries[:1], 1)),
                   "hnsw_ms_32": 1e3 * timed(lambda: index.nearest(queries[:32], 1)) / 32,
                   "gallery_mb": reps.nbytes / 2**20,
                   "hnsw_mb": (reps.nbytes + size * index.neighbours * 2 * 4) / 2**20}
            rows.append(row)
            print(row, flush=True)
        # a change: the gallery's own copy (immutable snapshots), then the index following it
        start = time.perf_counter()
        enrolled = gallery.with_class("enrolled", queries[:3], 0)
        row["enroll_gallery_ms"] = 1e3 * (time.perf_counter() - start)
        start = time.perf_counter()
        index.updated(enrolled, {"enrolled"})
        row["enroll_index_ms"] = 1e3 * (time.perf_counter() - start)
        removed = gallery.without_class("c0")
        start = time.perf_counter()
        index.updated(removed, {"c0"})
        row["remove_index_ms"] = 1e3 * (time.perf_counter() - start)
        print({k: row[k] for k in ("enroll_gallery_ms", "enroll_index_ms", "remove_index_ms")}, flush=True)
        # saved beside the gallery file, read back instead of built (a gallery file holds at most max_classes)
        if size > MAX_CLASSES:
            row.update(save_s=float("nan"), load_s=float("nan"), restored=False)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            saved = gallery.save(Path(tmp) / "gallery.npz")
            index.save_alongside(saved)
            row["save_s"] = time.perf_counter() - start
            start = time.perf_counter()
            restored = HnswIndex.load_or_build(Gallery.load(saved), head, saved)
            row["load_s"] = time.perf_counter() - start
            row["restored"] = restored.graph.index.ntotal == index.graph.index.ntotal and not restored.delta_labels
        print({k: row[k] for k in ("save_s", "load_s", "restored")}, flush=True)
    print(f"\ngallery search, 256-d real Flowers embeddings (PCA of Lite0's, {args.images} images) jittered to each "
          f"size, K = 1; {args.queries} held-out real queries; faiss {faiss.__version__}, HNSW M={HnswIndex.neighbours} "
          f"shortlist {HnswIndex.shortlist}; ms per query\n")
    print("| representatives | efSearch | exact, batch 1 | exact, batch 32 | hnsw, batch 1 | hnsw, batch 32 | hnsw recall@1 "
          "| hnsw build s | gallery MiB | hnsw MiB (about) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['representatives']:,} | {r['ef_search']} | {r['exact_ms_1']:.2f} | {r['exact_ms_32']:.2f} | {r['hnsw_ms_1']:.3f} | "
              f"{r['hnsw_ms_32']:.3f} | {r['recall_at_1']:.3f} | {r['build_s']:.0f} | {r['gallery_mb']:.0f} | "
              f"{r['hnsw_mb']:.0f} |")
    print("\nOne change to the gallery (the index updated, not rebuilt: a delta searched exactly beside the graph), "
          "and the gallery saved with its graph then loaded (the graph read back, not built):\n")
    print("| representatives | enroll: new gallery ms | enroll: index update ms | remove: index update ms | "
          "save gallery + graph s | load gallery + graph s | graph read back | build instead s |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        if "enroll_index_ms" in r:
            print(f"| {r['representatives']:,} | {r['enroll_gallery_ms']:.1f} | {r['enroll_index_ms']:.1f} | "
                  f"{r['remove_index_ms']:.1f} | {r['save_s']:.1f} | {r['load_s']:.1f} | "
                  f"{'yes' if r['restored'] else 'no (beyond max_classes)' if r['representatives'] > MAX_CLASSES else 'no'} | "
                  f"{r['build_s']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
