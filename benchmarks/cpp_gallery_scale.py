"""How long the C++ runtime's exact gallery search takes at 10k / 100k / 1M representatives,
against the Python runtime's exact index on the same gallery file (the C++ runtime has no
approximate index: it runs the artifact's distance head over every representative).

    python benchmarks/cpp_gallery_scale.py --artifact ART [--classes 1000,10000,100000] [--queries 64]

ART is a RepMet classifier artifact with a 256-d embedding and K = 10 representatives per class
(so that 100,000 classes, the runtime's max_classes, hold 1M representatives), e.g. the
repmet_flowers_lite0_mlp_cpu config with --set repmet.reps_per_class=10, exported with --format
onnx (only the timing matters here: an untrained head serves). The gallery: real Flowers 102
images embedded by the artifact, each representative a jittered copy of one (Gaussian noise,
cosine about 0.9, renormalised), saved as a gallery file both runtimes load. Each cell: ms per
query image, decoding and embedding included, median of --rounds passes; the row with 10
classes is the cost without a large gallery, so the difference is the search."""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from repmet.artifact.gallery_file import Gallery
from repmet.data import default_data_root
from repmet.runtime import FewShotClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpp_runtime import BENCH, _cpp, _timed  # noqa: E402

NOISE = 0.03  # per dimension, on unit vectors of 256-d: cos(real, jittered) about 0.9


def gallery_file(classifier: FewShotClassifier, real: np.ndarray, classes: int, folder: Path) -> Path:
    k = classifier.galleries.reps_per_class
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(real), classes * k)
    reps = real[picks] + rng.normal(0, NOISE, (classes * k, real.shape[1])).astype(np.float32)
    reps /= np.linalg.norm(reps, axis=1, keepdims=True)
    gallery = Gallery(tuple(f"c{i}" for i in range(classes)), reps.reshape(classes, k, -1).astype(np.float32),
                      np.full(classes, k, np.int64), classifier.artifact.fingerprint)
    return gallery.save(folder / f"gallery_{classes}.npz")


def cpp_ms(artifact: str, gallery: Path, batch: int, images: list[str], rounds: int) -> float:
    return statistics.median(_cpp(artifact, "onnx", batch, images, rounds, "--gallery", str(gallery)))


def python_ms(artifact: str, gallery: Path, batch: int, images: list[str], rounds: int) -> tuple[float, float]:
    """(ms per image, seconds to load the gallery)."""
    classifier = FewShotClassifier.load(artifact, backend="onnxruntime", index="exact")
    start = time.perf_counter()
    classifier.load_gallery(gallery)
    load_s = time.perf_counter() - start
    per_image = _timed(lambda: [classifier.classify(images[at:at + batch], top_k=1)
                                for at in range(0, len(images), batch)], images, rounds)
    return statistics.median(per_image), load_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--classes", default="10,1000,10000,100000")
    parser.add_argument("--images", type=int, default=1000, help="real images whose embeddings the gallery jitters")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    if not BENCH.exists():
        raise SystemExit(f"{BENCH} is missing: cmake -S repmet/runtime/cpp -B build/cpp && cmake --build build/cpp")
    files = sorted((Path(args.data_root or default_data_root()) / "flowers-102" / "jpg").glob("*.jpg"))
    chosen = [str(p) for p in random.Random(0).sample(files, args.images + args.queries)]
    classifier = FewShotClassifier.load(args.artifact, backend="onnxruntime")
    real = classifier.embed(chosen[:args.images])
    queries = chosen[args.images:]
    k = classifier.galleries.reps_per_class
    print(f"{args.artifact}: {real.shape[1]}-d, K = {k}; {args.queries} real query images; ms per query image "
          f"(decoding and embedding included)\n")
    print("| classes | representatives | gallery MiB | C++ load s | C++ batch 1 | C++ batch 32 | Python load s "
          "| Python batch 1 | Python batch 32 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for classes in (int(c) for c in args.classes.split(",")):
            path = gallery_file(classifier, real, classes, Path(tmp))
            start = time.perf_counter()
            subprocess.run([str(BENCH), args.artifact, "--format", "onnx", "--gallery", str(path), "--rounds", "1",
                            "--images", queries[0]], capture_output=True, check=True)
            cpp_load = time.perf_counter() - start  # the whole process on one image: mostly the gallery's load
            cpp = [cpp_ms(args.artifact, path, batch, queries, args.rounds) for batch in (1, 32)]
            python = [python_ms(args.artifact, path, batch, queries, args.rounds) for batch in (1, 32)]
            print(f"| {classes:,} | {classes * k:,} | {path.stat().st_size / 2**20:.0f} | {cpp_load:.1f} | "
                  f"{cpp[0]:.1f} | {cpp[1]:.1f} | {python[0][1]:.1f} | {python[0][0]:.1f} | {python[1][0]:.1f} |",
                  flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
