"""The few-shot detector through the runtime: parity of novel AP50 with metric-eval's episodes,
and speed per image (split by stage) and per enrolled box.

    metric-export checkpoints/fsod-mini/repmet_detection_fsod_lite0_cpu.pt --format onnx --format torchscript \
        --out artifacts/fsod_detector
    python benchmarks/detector_runtime.py artifacts/fsod_detector \
        --eval-json benchmarks/results/repmet_detection_fsod_lite0_cpu_shipped.json \
        --backends onnxruntime --shots 1,3,5 --episodes 2 [--data-root ../shared/data]
    python benchmarks/detector_runtime.py artifacts/fsod_detector --speed-only --speed-images 40

Parity: for each episode, the novel classes are enrolled through ``FewShotDetector.enroll``
from the same support boxes ``metric-eval`` draws (``sample_support(train, novel, K, seed,
episode)``), every test image is detected (score threshold 0, as the evaluator keeps
everything), and AP50 is computed by the same evaluator; ``--eval-json`` (metric-eval's JSON)
gives the episodes' numbers to compare with.

Speed (batch 1, the trained gallery, one thread pool as configured): preprocessing (decode,
resize, normalise, pad), then the detection graph, split into backbone + RPN (the graph's
``proposals`` stage), the regions' crops and their embedding (``region_embedder``, inside the
``boxes`` stage) and the rest of the ``boxes`` stage (box head, NMS, scoring): ONNX Runtime's profiler for
onnxruntime (node times by name; what it does not attribute to a stage is "other"), module
hooks for eager torch; a frozen TorchScript graph has no stage boundaries left, so only its
total is shown. Prints one table per section.
"""

from __future__ import annotations

import argparse
import collections
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

EMBEDDING = "region_embedder"  # the module (and ONNX node-name part) of the region crops' embedding
STAGES = ("proposals", "boxes")  # the detection graph's two named stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact")
    parser.add_argument("--data-root", default=None, help="the folder holding the dataset (default: the config's)")
    parser.add_argument("--eval-json", default=None)
    parser.add_argument("--shots", default="5", help="comma-separated K")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="onnxruntime,torchscript,torch")
    parser.add_argument("--images", type=int, default=0, help="test images for parity (0: all)")
    parser.add_argument("--speed-images", type=int, default=40, help="test images timed by stage (0: skip)")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()

    artifact = Artifact.open(args.artifact)
    config = open_checkpoint(artifact.file(artifact.metadata["model"])).config
    if args.data_root:
        config.data.root = args.data_root
    folder = dataset_folder(config)
    train, test = load_voc_detection(folder, "train"), load_voc_detection(folder, "test")
    backends = args.backends.split(",")
    if not args.speed_only:
        parity(args, artifact, config, train, test, backends)
    if args.speed_images:
        speed(args.artifact, artifact, test.images[:args.speed_images], backends)


def parity(args, artifact, config, train, test, backends) -> None:
    if args.images:
        test = type(test)(test.images[:args.images], test.class_names, test.description)
    base = list(artifact.metadata["class_names"])
    novel = list(base_novel_classes(config).novel)  # metric-eval's order: it seeds the support draws
    shots = [int(k) for k in args.shots.split(",")]
    print(f"# {artifact.folder.name}: {len(test)} test images of {test.description}, novel classes "
          f"{', '.join(novel)}\n")
    print("| backend | K | episode | novel AP50 (runtime) | novel AP50 (metric-eval) | difference | "
          "base AP50 (runtime) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    enroll_costs = {}
    for backend in backends:
        detector = FewShotDetector.load(args.artifact, backend=backend)
        trained = detector.save_gallery(Path(tempfile.mkdtemp()) / "trained.npz")
        enroll_seconds, boxes_enrolled = 0.0, 0
        for shot in shots:
            reference = _reference(args.eval_json, shot) if args.eval_json else None
            for episode in range(args.episodes):
                detector.load_gallery(trained)
                support = sample_support(train, novel, shot, args.seed, episode)
                for name, items in support.items():
                    start = time.perf_counter()
                    detector.enroll(name, [(item.image.path, item.box[None]) for item in items], seed=args.seed)
                    enroll_seconds += time.perf_counter() - start
                    boxes_enrolled += len(items)
                index = {name: test.class_names.index(name) for name in detector.labels}
                found = []
                for (detections,) in (detector.detect([image.path], score_threshold=0.0) for image in test.images):
                    found.append(ImageDetections(np.array([d.box for d in detections], np.float32).reshape(-1, 4),
                                                 np.array([d.score for d in detections], np.float32),
                                                 np.array([index[d.label] for d in detections], np.int64)))
                novel_ap = detection_ap(test, found, [test.class_names.index(n) for n in novel])["ap50"]
                base_ap = detection_ap(test, found, [test.class_names.index(n) for n in base])["ap50"]
                theirs = reference[episode] if reference and episode < len(reference) else None
                print(f"| {backend} | {shot} | {episode} | {100 * novel_ap:.2f} | "
                      f"{'' if theirs is None else f'{100 * theirs:.2f}'} | "
                      f"{'' if theirs is None else f'{100 * (novel_ap - theirs):+.2f}'} | {100 * base_ap:.2f} |",
                      flush=True)
        enroll_costs[backend] = enroll_seconds / max(boxes_enrolled, 1)
    print("\n| backend | enroll, ms per support box |")
    print("|---|---:|")
    for backend, per_box in enroll_costs.items():
        print(f"| {backend} | {1000 * per_box:.0f} |")
    print()


def speed(path: str, artifact: Artifact, images: list, backends: list[str]) -> None:
    reps = np.ascontiguousarray(FewShotDetector.load(path, backend="onnxruntime").gallery.representatives, np.float32)
    rows = []
    for backend in backends:
        detector = FewShotDetector.load(path, backend=backend)
        prepare, run = [], []
        prepared_images = []
        for index, image in enumerate(images):
            start = time.perf_counter()
            prepared = detector._prepare(image.path, image.path.name)
            prepare.append(time.perf_counter() - start)
            prepared_images.append(prepared)
            detector.backend.detect(prepared, reps)  # warm
            start = time.perf_counter()
            detector.backend.detect(prepared, reps)
            run.append(time.perf_counter() - start)
        split = _stage_split(backend, artifact, prepared_images, reps)
        rows.append((backend, np.median(prepare), np.median(run), split))
    print(f"Speed per image, batch 1, median of {len(images)} test images (ms):\n")
    print("| backend | preprocess | detection graph | of which backbone + RPN | region crops + embedding | "
          "box head, NMS, scores | other |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, prep, graph, split in rows:
        parts = ["", "", "", ""] if split is None else [f"{1000 * split[k]:.0f}"
                                                        for k in ("proposals", EMBEDDING, "boxes", "other")]
        print(f"| {backend} | {1000 * prep:.0f} | {1000 * graph:.0f} | {' | '.join(parts)} |")


def _stage_split(backend: str, artifact: Artifact, prepared_images: list, reps: np.ndarray) -> dict | None:
    if backend == "onnxruntime":
        return _onnxruntime_split(artifact, prepared_images, reps)
    if backend == "torch":
        return _eager_split(artifact, prepared_images, reps)
    return None


def _onnxruntime_split(artifact: Artifact, prepared_images: list, reps: np.ndarray) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "detect")
    session = ort.InferenceSession(str(artifact.file(artifact.metadata["graphs"]["onnx"]["detection"])), options,
                                   providers=["CPUExecutionProvider"])
    walls = []
    for prepared in [prepared_images[0], *prepared_images]:  # the first run warms up and is not counted
        start = time.perf_counter()
        session.run(None, {"image": prepared.tensor, "image_size": prepared.image_size, "representatives": reps})
        walls.append(time.perf_counter() - start)
    walls = walls[1:]
    events = json.loads(Path(session.end_profiling()).read_text())
    runs_started = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    totals = collections.Counter()
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time") or event["ts"] < runs_started[1]:
            continue
        name = event["name"].removeprefix("fused ")
        stage = name.split("/")[1] if name.startswith("/") and name.split("/")[1] in STAGES else "other"
        if f"/{EMBEDDING}/" in name:
            stage = EMBEDDING
        totals[stage] += event["dur"] * 1e-6
    runs = len(prepared_images)
    split = {stage: totals[stage] / runs for stage in (*STAGES, EMBEDDING)}
    split["other"] = float(np.mean(walls)) - sum(split.values())  # unattributed nodes, session overhead
    return split


def _eager_split(artifact: Artifact, prepared_images: list, reps: np.ndarray) -> dict:
    import torch

    from repmet.models.detection.fixed_shape_graph import DetectionGraph

    model = open_checkpoint(artifact.file(artifact.metadata["model"])).model.float().eval()
    graph = DetectionGraph(model, artifact.metadata["detection"]["canvas"]).eval()
    spent = collections.Counter()
    started = {}
    modules = {stage: getattr(graph, stage) for stage in STAGES}
    modules[EMBEDDING] = graph.boxes.model.region_embedder
    for stage, module in modules.items():
        module.register_forward_pre_hook(lambda _m, _i, stage=stage: started.__setitem__(stage, time.perf_counter()))
        module.register_forward_hook(
            lambda _m, _i, _o, stage=stage: spent.update({stage: time.perf_counter() - started[stage]}))
    walls = []
    with torch.inference_mode():
        for prepared in prepared_images:
            start = time.perf_counter()
            graph(torch.from_numpy(prepared.tensor), torch.from_numpy(prepared.image_size), torch.from_numpy(reps))
            walls.append(time.perf_counter() - start)
    runs = len(prepared_images)
    split = {stage: spent[stage] / runs for stage in modules}
    split["boxes"] -= split[EMBEDDING]  # the embedding runs inside the boxes stage
    split["other"] = float(np.mean(walls)) - sum(split.values())
    return split


def _reference(path: str, shot: int) -> list[float]:
    result = json.loads(open(path).read())
    return next(f["per_episode_novel_ap50"] for f in result["fewshot"] if f["shot"] == shot)


if __name__ == "__main__":
    main()
