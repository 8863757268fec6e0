"""Runtime speed: embedding throughput and latency per backend, and classify cost as the gallery grows.

    python benchmarks/runtime_bench.py \
        --artifact conv4=artifacts/protonets_1_5 --artifact lite0=artifacts/repmet_flowers_lite0

Each artifact must hold TorchScript and ONNX graphs (metric-export ... --format torchscript
--format onnx); TensorRT and CUDA rows are added where they exist. For every backend: images/s
and p50 / p99 latency of ``backend.embed`` on preprocessed batches of 1 and 32 (preprocessing
is the same numpy code for all backends and is timed separately), and the ratio of
throughput to eager PyTorch. Then ``classify`` (head + ranking) against galleries of 1k, 10k
and 100k representatives. Inputs are real images when ``--images FOLDER`` is given,
otherwise fixed random tensors (speed does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from repmet.runtime import Artifact, FewShotClassifier, Gallery
from repmet.runtime.backends import create_backend


def timings(fn, warmup: int, runs: int, min_seconds: float) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 10 * runs:
            break
    return np.array(times)


def available_backends(artifact: Artifact) -> list[tuple[str, str]]:
    rows = [("torch", "cpu"), ("torchscript", "cpu"), ("onnxruntime", "cpu")]
    try:
        import torch

        if torch.cuda.is_available():
            rows += [("torch", "cuda"), ("torchscript", "cuda")]
    except ImportError:
        pass
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            rows.append(("onnxruntime", "cuda"))
    except ImportError:
        pass
    if "tensorrt" in artifact.formats():
        rows.append(("tensorrt", "cuda"))
    return rows


def bench_embedding(name: str, folder: str, batches: list[int], runs: int, min_seconds: float) -> list[dict]:
    artifact = Artifact.open(folder)
    meta = artifact.metadata["input"]
    rng = np.random.default_rng(0)
    results = []
    for backend_name, device in available_backends(artifact):
        backend = create_backend(artifact, backend_name, device)
        for batch in batches:
            images = rng.standard_normal((batch, meta["channels"], meta["height"], meta["width"])).astype(np.float32)
            t = timings(lambda: backend.embed(images), warmup=2, runs=runs, min_seconds=min_seconds)
            results.append({"model": name, "backend": backend_name, "device": device, "batch": batch,
                            "images_per_s": batch / np.median(t), "p50_ms": 1e3 * np.percentile(t, 50),
                            "p99_ms": 1e3 * np.percentile(t, 99), "runs": len(t)})
    return results


def bench_preprocess(name: str, folder: str, images_dir: str | None) -> dict:
    from repmet.imaging import IMAGE_SUFFIXES
    from repmet.runtime.preprocess import preprocess_batch

    artifact = Artifact.open(folder)
    spec = artifact.preprocess
    if images_dir:
        paths = sorted(p for p in Path(images_dir).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:32]
        sources = paths
    else:
        rng = np.random.default_rng(0)
        sources = [rng.integers(0, 256, (500, 400, 3), dtype=np.uint8) for _ in range(32)]
    t = timings(lambda: preprocess_batch(sources, spec), warmup=1, runs=3, min_seconds=1.0)
    return {"model": name, "images_per_s": len(sources) / np.median(t)}


def bench_gallery(folder: str, sizes: list[int], backends: list[str]) -> list[dict]:
    """``classify`` cost without the embedding: the head over C classes x K reps, plus top-5 ranking."""
    artifact = Artifact.open(folder)
    k = artifact.metadata["head"]["reps_per_class"]
    dim = artifact.metadata["embedding"]["dim"]
    rng = np.random.default_rng(0)
    results = []
    for backend_name in backends:
        classifier = FewShotClassifier(artifact, create_backend(artifact, backend_name, "cpu"))
        for reps in sizes:
            classes = max(1, reps // k)
            gallery = Gallery(tuple(f"c{i}" for i in range(classes)),
                              rng.standard_normal((classes, k, dim)).astype(np.float32),
                              np.full(classes, k, np.int64), artifact.fingerprint)
            index = classifier.build_index(gallery)
            for batch in (1, 32):
                queries = rng.standard_normal((batch, dim)).astype(np.float32)

                def run():
                    classifier.predictions(index, queries, top_k=5)

                t = timings(run, warmup=1, runs=5, min_seconds=0.5)
                results.append({"backend": backend_name, "representatives": classes * k, "batch": batch,
                                "p50_ms": 1e3 * np.percentile(t, 50), "p99_ms": 1e3 * np.percentile(t, 99)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", action="append", required=True, help="NAME=FOLDER; repeat")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per row (at least)")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="time each row at least this long")
    parser.add_argument("--gallery-sizes", default="1000,10000,100000")
    parser.add_argument("--gallery-artifact", default=None, help="NAME of the artifact for the gallery table "
                        "(default: the last one)")
    parser.add_argument("--images", default=None, help="real images for the preprocessing row")
    args = parser.parse_args()
    artifacts = dict(item.split("=", 1) for item in args.artifact)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"# cpu threads: torch/ORT defaults on {os.cpu_count()} logical cores")

    print("\n## Embedding: images/s (p50 / p99 latency per call), ratio = throughput / eager PyTorch\n")
    print("| model | backend | device | batch | images/s | p50 ms | p99 ms | vs eager |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, folder in artifacts.items():
        rows = bench_embedding(name, folder, batches, args.runs, args.min_seconds)
        eager = {(r["device"], r["batch"]): r["images_per_s"] for r in rows if r["backend"] == "torch"}
        for r in rows:
            base = eager.get((r["device"], r["batch"])) or eager.get(("cpu", r["batch"]))
            print(f"| {r['model']} | {r['backend']} | {r['device']} | {r['batch']} | {r['images_per_s']:.1f} | "
                  f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['images_per_s'] / base:.2f}x |", flush=True)

    print("\n## Preprocessing (numpy + Pillow, the same for every backend), one thread\n")
    print("| model | images/s |")
    print("|---|---:|")
    for name, folder in artifacts.items():
        r = bench_preprocess(name, folder, args.images)
        print(f"| {r['model']} | {r['images_per_s']:.1f} |", flush=True)

    name = args.gallery_artifact or list(artifacts)[-1]
    sizes = [int(s) for s in args.gallery_sizes.split(",")]
    print(f"\n## classify without the embedding ({name}): distance head + top-5 over the gallery\n")
    print("| backend | representatives | batch | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for r in bench_gallery(artifacts[name], sizes, ["torch", "onnxruntime"]):
        print(f"| {r['backend']} | {r['representatives']} | {r['batch']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
