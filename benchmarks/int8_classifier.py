"""INT8 against fp32, both through ONNX Runtime on this CPU: accuracy on the full test benchmarks
and embedding throughput, in one run.

    metric-export checkpoints/flowers-102/repmet_flowers_lite0_finetune_trainval_cpu.pt \
        --format onnx --format int8 --out artifacts/flowers_int8
    metric-export checkpoints/omniglot/protonets_1_5.pt --format onnx --format int8 --out artifacts/omniglot_int8
    python benchmarks/int8_classifier.py --flowers artifacts/flowers_int8 --omniglot \
        checkpoints/omniglot/protonets_1_5.pt=artifacts/omniglot_int8

Accuracy goes through ``FewShotClassifier`` (the runtime's own preprocessing, the artifact's
gallery) with ``backend=onnxruntime`` (fp32) and ``backend=onnxruntime-int8``: Flowers, every test
image against the trained gallery; Omniglot, the checkpoint's 1000 test episodes (enroll the
shots, classify the queries). Speed: ``backend.embed`` on the same real preprocessed images at
batch 1 and 32, the two backends timed in alternating rounds so that a busy machine slows both
alike; median images/s. The CPU's integer dot-product instructions are printed: ONNX Runtime's
kernels use VNNI (vpdpbusd) where the CPU has it, AVX2's vpmaddubsw otherwise.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from repmet.data import load_few_shot_split, load_labeled_split
from repmet.runtime import FewShotClassifier
from repmet.runtime.preprocess import preprocess_batch
from runtime_accuracy import runtime_episodes
from runtime_bench import timings

BACKENDS = ("onnxruntime", "onnxruntime-int8")


def cpu_instructions() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
    wanted = ["avx512_vnni", "avx_vnni", "avx512bw", "avx2", "amx_int8"]
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return f"{model}; {', '.join(f for f in wanted if f in flags) or 'none of ' + ', '.join(wanted)}"


def flowers_accuracy(artifact: str, root: str | None) -> dict[str, float]:
    test = load_labeled_split("flowers102", "test", root, download=False)
    truth = [test.class_names[c] for c in test.labels]
    result = {}
    for backend in BACKENDS:
        classifier = FewShotClassifier.load(artifact, backend=backend)
        predicted = [p.label for p in classifier.classify(list(test.paths))]
        result[backend] = float(np.mean([p == t for p, t in zip(predicted, truth)]))
    result["what"] = f"Flowers 102 test, {len(truth)} images, 102-class gallery"
    return result


def omniglot_accuracy(checkpoint: str, artifact: str, root: str | None, episodes: int) -> dict[str, float]:
    from repmet.export.exportable import load_exportable

    config = load_exportable(checkpoint).config
    e = config.eval
    data = load_few_shot_split("omniglot", config.data.test_split, root)
    result = {}
    for backend in BACKENDS:
        correct = runtime_episodes(FewShotClassifier.load(artifact, backend=backend), data, e, episodes)
        result[backend] = sum(correct) / (episodes * e.way * e.query)
    result["what"] = f"Omniglot test, {episodes} episodes {e.way}-way {e.shot}-shot"
    return result


def speed(artifact: str, images: np.ndarray, batches: list[int], rounds: int) -> dict:
    runners = {b: FewShotClassifier.load(artifact, backend=b).backend for b in BACKENDS}
    rates = {(b, n): [] for b in BACKENDS for n in batches}
    for _ in range(rounds):
        for n in batches:
            batch = np.ascontiguousarray(images[:n])
            for backend, runner in runners.items():
                times = timings(lambda: runner.embed(batch), warmup=2, runs=10, min_seconds=1.0)
                rates[backend, n].append(n / np.median(times))
    return {key: float(np.median(values)) for key, values in rates.items()}


def sample_images(artifact: str, paths: list, count: int) -> np.ndarray:
    classifier = FewShotClassifier.load(artifact, backend="onnxruntime")
    return preprocess_batch(paths[:count], classifier.artifact.preprocess)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flowers", help="artifact with onnx and int8 graphs of a Flowers 102 checkpoint")
    parser.add_argument("--omniglot", help="CHECKPOINT=ARTIFACT of a Prototypical Networks checkpoint")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    print(f"# CPU: {cpu_instructions()}; onnxruntime {__import__('onnxruntime').__version__}")
    rows = []
    if args.flowers:
        start = time.perf_counter()
        accuracy = flowers_accuracy(args.flowers, args.data_root)
        test = load_labeled_split("flowers102", "test", args.data_root, download=False)
        picks = np.linspace(0, len(test.paths) - 1, max(batches)).round().astype(int)
        rates = speed(args.flowers, sample_images(args.flowers, [test.paths[i] for i in picks], max(batches)),
                      batches, args.rounds)
        rows.append(("Flowers Lite0", accuracy, rates, time.perf_counter() - start))
    if args.omniglot:
        checkpoint, artifact = args.omniglot.split("=", 1)
        start = time.perf_counter()
        accuracy = omniglot_accuracy(checkpoint, artifact, args.data_root, args.episodes)
        data = load_few_shot_split("omniglot", "test", args.data_root)
        pictures = [255 - data.images[c, 0, 0].numpy() for c in range(max(batches))]
        rates = speed(artifact, sample_images(artifact, pictures, max(batches)), batches, args.rounds)
        rows.append(("Omniglot conv4", accuracy, rates, time.perf_counter() - start))
    print()
    header = " | ".join(f"batch {n}: fp32 / int8 images/s | speed-up" for n in batches)
    print(f"| model | accuracy on | fp32 % | int8 % | cost (points) | {header} | seconds |")
    print("|---|---|---:|---:|---:|" + "---:|---:|" * len(batches) + "---:|")
    for name, accuracy, rates, seconds in rows:
        fp32, int8 = (100 * accuracy[b] for b in BACKENDS)
        cells = " | ".join(f"{rates[BACKENDS[0], n]:.0f} / {rates[BACKENDS[1], n]:.0f} | "
                           f"{rates[BACKENDS[1], n] / rates[BACKENDS[0], n]:.2f}x" for n in batches)
        print(f"| {name} | {accuracy['what']} | {fp32:.2f} | {int8:.2f} | {fp32 - int8:+.2f} | {cells} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
