"""The few-shot detector through the runtime: parity of novel AP50 with metric-eval's episodes,
and speed per image and per enrolled box.

    metric-export checkpoints/fsod-mini/repmet_detection_fsod_lite0_cpu.pt --format onnx --out artifacts/fsod_detector
    python benchmarks/detector_runtime.py artifacts/fsod_detector --eval-json R.json --shot 5 --episodes 2 \
        [--data-root ../shared/data]

For each episode, the novel classes are enrolled through ``FewShotDetector.enroll`` from the
same support boxes ``metric-eval`` draws (``sample_support(train, novel, K, seed, episode)``),
every test image is detected (score threshold 0.05, as the evaluator keeps), and AP50 is
computed by the same evaluator; ``--eval-json`` (metric-eval's JSON) gives the episodes'
numbers to compare with. Prints one table per section.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from repmet.data.detection import load_voc_detection, sample_support
from repmet.evaluate.detection_ap import ImageDetections, detection_ap
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes, dataset_folder
from repmet.runtime import Artifact, FewShotDetector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact")
    parser.add_argument("--data-root", default=None, help="the folder holding the dataset (default: the config's)")
    parser.add_argument("--eval-json", default=None)
    parser.add_argument("--shot", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="onnxruntime,torch")
    parser.add_argument("--images", type=int, default=0, help="test images (0: all)")
    args = parser.parse_args()

    artifact = Artifact.open(args.artifact)
    config = open_checkpoint(artifact.file(artifact.metadata["model"])).config
    if args.data_root:
        config.data.root = args.data_root
    folder = dataset_folder(config)
    train, test = load_voc_detection(folder, "train"), load_voc_detection(folder, "test")
    if args.images:
        test = type(test)(test.images[:args.images], test.class_names, test.description)
    base = list(artifact.metadata["class_names"])
    novel = list(base_novel_classes(config).novel)  # metric-eval's order: it seeds the support draws
    reference = _reference(args.eval_json, args.shot) if args.eval_json else None

    print(f"# {artifact.folder.name}: {len(test)} test images of {folder}, novel classes {', '.join(novel)}, "
          f"{args.shot}-shot\n")
    print("| backend | episode | novel AP50 (runtime) | novel AP50 (metric-eval) | difference | base AP50 (runtime) |")
    print("|---|---:|---:|---:|---:|---:|")
    timings = {}
    for backend in args.backends.split(","):
        detector = FewShotDetector.load(args.artifact, backend=backend)
        trained = detector.save_gallery(Path(tempfile.mkdtemp()) / "trained.npz")
        enroll_seconds, boxes_enrolled, detect_seconds = 0.0, 0, []
        for episode in range(args.episodes):
            detector.load_gallery(trained)
            support = sample_support(train, novel, args.shot, args.seed, episode)
            for name, items in support.items():
                start = time.perf_counter()
                detector.enroll(name, [(item.image.path, item.box[None]) for item in items], seed=args.seed)
                enroll_seconds += time.perf_counter() - start
                boxes_enrolled += len(items)
            found = []
            for image in test.images:
                start = time.perf_counter()
                (detections,) = detector.detect([image.path], score_threshold=0.0)
                detect_seconds.append(time.perf_counter() - start)
                index = {name: test.class_names.index(name) for name in detector.labels}
                found.append(ImageDetections(np.array([d.box for d in detections], np.float32).reshape(-1, 4),
                                             np.array([d.score for d in detections], np.float32),
                                             np.array([index[d.label] for d in detections], np.int64)))
            novel_ap = detection_ap(test, found, [test.class_names.index(n) for n in novel])["ap50"]
            base_ap = detection_ap(test, found, [test.class_names.index(n) for n in base])["ap50"]
            theirs = reference[episode] if reference and episode < len(reference) else None
            print(f"| {backend} | {episode} | {100 * novel_ap:.2f} | "
                  f"{'' if theirs is None else f'{100 * theirs:.2f}'} | "
                  f"{'' if theirs is None else f'{100 * (novel_ap - theirs):+.2f}'} | {100 * base_ap:.2f} |")
        timings[backend] = (np.median(detect_seconds), np.percentile(detect_seconds, 99),
                            enroll_seconds / max(boxes_enrolled, 1))
    print("\n| backend | detect, p50 ms per image | p99 ms | enroll, ms per support box |")
    print("|---|---:|---:|---:|")
    for backend, (p50, p99, per_box) in timings.items():
        print(f"| {backend} | {1000 * p50:.0f} | {1000 * p99:.0f} | {1000 * per_box:.0f} |")


def _reference(path: str, shot: int) -> list[float]:
    result = json.loads(open(path).read())
    return next(f["per_episode_novel_ap50"] for f in result["fewshot"] if f["shot"] == shot)


if __name__ == "__main__":
    main()
