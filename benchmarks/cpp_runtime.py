"""Speed of the C++ runtime against the Python runtime on the same artifacts and real images:
milliseconds per image (decoding and preprocessing included), batch 1 and 32 for
classifiers, batch 1 for the detector.

    cmake -S repmet/runtime/cpp -B build/cpp && cmake --build build/cpp
    metric-export checkpoints/omniglot/protonets_1_5.pt --format torchscript --format onnx --format aoti \
        --out artifacts/omniglot_1_5
    metric-export checkpoints/flowers-102/repmet_flowers_lite0_finetune_trainval_cpu.pt --format torchscript \
        --format onnx --format aoti --format int8 --out artifacts/flowers_lite0
    metric-export checkpoints/fsod-mini/repmet_detection_fsod_lite0_cpu.pt --format onnx --format torchscript \
        --format aoti --out artifacts/fsod_detector
    metric-export checkpoints/fsod-mini/repmet_detection_fsod_lite0_cpu.pt --format int8 \
        --out artifacts/fsod_detector_int8
    python benchmarks/cpp_runtime.py --classifier artifacts/omniglot_1_5 --classifier artifacts/flowers_lite0 \
        --detector artifacts/fsod_detector --detector artifacts/fsod_detector_int8 [--data-root ../shared/data] \
        [--images 64] [--rounds 3] [--pairs 5]

C++: ``build/cpp/repmet-bench`` (ONNX Runtime's fp32 and int8 graphs when the build found it,
AOTInductor and TorchScript). Python: ``FewShotClassifier`` /
``FewShotDetector`` with ONNX Runtime (fp32, and int8 when exported), TorchScript and
AOTInductor. Each cell is the median over ``--rounds`` timed passes over the
images after one warm-up pass. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from repmet.runtime import Artifact, FewShotClassifier, FewShotDetector

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH = PROJECT_ROOT / "build" / "cpp" / "repmet-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", action="append", default=[])
    parser.add_argument("--detector", action="append", default=[])
    parser.add_argument("--data-root", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=0,
                        help="also time each detector's best ONNX Runtime graphs (int8, else fp32) in C++ and "
                             "Python alternately, this many pairs (a detector row varies by up to 10%% between runs)")
    args = parser.parse_args()
    if not BENCH.exists():
        raise SystemExit(f"{BENCH} is missing: cmake -S repmet/runtime/cpp -B build/cpp && cmake --build build/cpp")
    data = Path(args.data_root)
    print("| artifact | runtime | graphs | batch | ms per image (median) |")
    print("|---|---|---|---:|---:|")
    for folder in args.classifier:
        images = _images_for(Artifact.open(folder), data, args.images)
        for batch in (1, 32):
            for fmt in ("int8", "onnx", "aoti", "torchscript"):
                if _graph_key(fmt) in Artifact.open(folder).formats():
                    _row(folder, "C++", fmt, batch, _cpp(folder, fmt, batch, images, args.rounds))
            for backend in ("onnxruntime-int8", "onnxruntime", "torchscript", "aoti"):
                if _graph_key(backend) in Artifact.open(folder).formats():
                    _row(folder, "Python", backend, batch, _python_classifier(folder, backend, batch, images, args.rounds))
    for folder in args.detector:
        images = _images_for(Artifact.open(folder), data, min(args.images, 20))
        for fmt in ("int8", "onnx", "aoti", "torchscript"):
            if _graph_key(fmt) in Artifact.open(folder).formats():
                _row(folder, "C++", fmt, 1, _cpp(folder, fmt, 1, images, args.rounds))
        for backend in ("onnxruntime-int8", "onnxruntime", "torchscript", "aoti"):
            if _graph_key(backend) in Artifact.open(folder).formats():
                _row(folder, "Python", backend, 1, _python_detector(folder, backend, images, args.rounds))
    for folder in args.detector if args.pairs else []:
        images = _images_for(Artifact.open(folder), data, min(args.images, 20))
        fmt = "int8" if "onnx_int8" in Artifact.open(folder).formats() else "onnx"
        backend = "onnxruntime-int8" if fmt == "int8" else "onnxruntime"
        cpp, python = [], []
        for _ in range(args.pairs):
            cpp.append(statistics.median(_cpp(folder, fmt, 1, images, args.rounds)))
            python.append(statistics.median(_python_detector(folder, backend, images, args.rounds)))
        print(f"\n{Path(folder).name}, {args.pairs} alternating pairs: C++ {fmt} "
              + " ".join(f"{x:.1f}" for x in cpp) + f" (median {statistics.median(cpp):.1f}); Python {backend} "
              + " ".join(f"{x:.1f}" for x in python) + f" (median {statistics.median(python):.1f})", flush=True)


def _graph_key(name: str) -> str:
    """A C++ format or Python backend -> the key of its graphs in metadata.json."""
    return {"onnxruntime": "onnx", "onnxruntime-int8": "onnx_int8", "int8": "onnx_int8"}.get(name, name)


def _row(folder: str, runtime: str, graphs: str, batch: int, per_image: list[float]) -> None:
    print(f"| {Path(folder).name} | {runtime} | {graphs} | {batch} | {statistics.median(per_image):.2f} |", flush=True)


def _images_for(artifact: Artifact, data: Path, count: int) -> list[str]:
    """Real test images of the artifact's kind: Omniglot evaluation PNGs (grey), Flowers JPEGs
    (RGB classifiers) or fsod-mini test photos (detectors)."""
    if artifact.task == "detection":
        return [str(p) for p in sorted((data / "fsod-mini" / "JPEGImages").glob("*.jpg"))[:count]]
    if artifact.metadata["preprocess"]["color"] == "L":
        folder = Path(tempfile.mkdtemp())
        with zipfile.ZipFile(data / "omniglot" / "images_evaluation.zip") as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".png"))[::37][:count]
            for i, name in enumerate(names):
                (folder / f"{i:03d}.png").write_bytes(archive.read(name))
        return [str(p) for p in sorted(folder.glob("*.png"))]
    return [str(p) for p in sorted((data / "flowers-102" / "jpg").glob("*.jpg"))[::97][:count]]


def _cpp(folder: str, fmt: str, batch: int, images: list[str], rounds: int, *extra: str) -> list[float]:
    """``repmet-bench``'s ms per image of each timed round (``extra``: more options, e.g. --gallery FILE)."""
    run = subprocess.run([str(BENCH), folder, "--format", fmt, "--batch", str(batch), "--rounds", str(rounds),
                          *extra, "--images", *images], capture_output=True, text=True, check=True)
    return json.loads(run.stdout)["ms_per_image"]


def _timed(work, images: list[str], rounds: int) -> list[float]:
    per_image = []
    for round_ in range(rounds + 1):
        start = time.perf_counter()
        work()
        if round_:  # round 0 warms up
            per_image.append(1000 * (time.perf_counter() - start) / len(images))
    return per_image


def _python_classifier(folder: str, backend: str, batch: int, images: list[str], rounds: int) -> list[float]:
    classifier = FewShotClassifier.load(folder, backend=backend, batch_size=batch)
    if not classifier.labels:  # as repmet-bench: the first images enrolled as classes
        for c, image in enumerate(images[:5]):
            classifier.enroll(f"class{c}", [image])
    return _timed(lambda: [classifier.classify(images[s:s + batch]) for s in range(0, len(images), batch)],
                  images, rounds)


def _python_detector(folder: str, backend: str, images: list[str], rounds: int) -> list[float]:
    detector = FewShotDetector.load(folder, backend=backend)
    return _timed(lambda: detector.detect(images, score_threshold=0.05), images, rounds)


if __name__ == "__main__":
    main()
