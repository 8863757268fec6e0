"""A detector's artifact: the fixed-shape detection and box-embedding graphs of each chosen format
(``repmet.export.formats``: ONNX, portable and the TensorRT-parser variant; TorchScript; AOTInductor
packages), the trained gallery, ``model.pt`` and
``metadata.json`` (``task: detection``). Verified on real test images: each backend's
detections against eager PyTorch's (same label, IoU >= 0.99, score within 1e-3), and its box
embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from repmet.checkpoint import save_checkpoint
from repmet.errors import UserError
from repmet.export.formats import package_versions
from repmet.export.tasks import EXPORT_TASKS, ExportRequest
from repmet.artifact.writer import add_fingerprint_and_gallery
from repmet.export.exportable import PENDING_FINGERPRINT
from repmet.methods import TrainedModel
from repmet.artifact.reader import SCHEMA_VERSION
from repmet.artifact.gallery_file import Gallery

VERIFY_IMAGES = 8
MAX_UNMATCHED = 0.01  # of PyTorch's detections: NMS ties may break the other way
SCORE_TOLERANCE = 1e-3
EMBEDDING_TOLERANCE = 1e-4


@EXPORT_TASKS.register("detection")
def build_detector_artifact(request: ExportRequest, work: Path) -> dict:
    trained, checkpoint, formats = request.trained, request.checkpoint, request.formats
    model = trained.model.eval()
    canvas = model.transform.canvas
    save_checkpoint({"model": model.state_dict(), "config": trained.config.to_dict(), "epoch": trained.epoch,
                     **trained.description()}, work / "model.pt")
    graphs = {fmt.graph_key: fmt.export_detector(trained, canvas, work, request.options) for fmt in formats}
    # the fingerprint is of the graphs and model.pt (and the preprocessing); the gallery carries it
    metadata = _metadata(trained, checkpoint, canvas, graphs, package_versions(formats, graphs))
    reps = trained.gallery.representatives.numpy().astype(np.float32)
    add_fingerprint_and_gallery(metadata, work, Gallery(tuple(trained.class_names), reps,
                                                        np.full(len(reps), reps.shape[1], np.int64),
                                                        PENDING_FINGERPRINT))
    tolerances = {fmt.graph_key: fmt.tolerance(request.options) is not None for fmt in formats}
    metadata["verification"] = verify_detector(trained, work, metadata, request.data_root, request.log, tolerances)
    for fmt in formats:
        if (gate := fmt.accuracy_gate(request.options)) is not None:
            metadata["verification"][fmt.graph_key]["accuracy"] = _gate_detection_accuracy(
                trained, work, metadata, fmt, gate, request.log)
    return metadata


def _gate_detection_accuracy(trained: TrainedModel, folder: Path, metadata: dict, fmt, gate,
                             log: Callable[[str], None]) -> dict:
    """A lossy format's AP50 of the trained classes on the test images, against the fp32 graphs it
    was made from (verified against PyTorch above); refused beyond the gate."""
    from repmet.evaluate.detection_ap import ImageDetections, detection_ap
    from repmet.export.accuracy_cost import AccuracyCost, require_within
    from repmet.export.formats import EXPORT_FORMATS
    from repmet.methods.detector import load_detection_split
    from repmet.runtime.backends import verifying_backend
    from repmet.runtime.detection_preprocess import prepare_detection_file

    config = trained.config
    split = load_detection_split(config, config.data.test_split)
    picks = np.unique(np.linspace(0, len(split) - 1, min(gate.images, len(split))).round().astype(int))
    split = type(split)([split.images[i] for i in picks], split.class_names, split.description)
    classes = [split.class_names.index(name) for name in trained.class_names]
    reps = trained.gallery.representatives.numpy().astype(np.float32)
    runners = []
    for key in (EXPORT_FORMATS.get(fmt.needs[0]).graph_key, fmt.graph_key):  # the fp32 graphs it builds on, itself
        graphs = metadata["graphs"][key]
        runners.append(verifying_backend(key).detector_runner(folder / graphs["detection"],
                                                              folder / graphs["box_embedding"], "cpu", 0))
    found: list[list] = [[] for _ in runners]
    for image in split.images:
        prepared = prepare_detection_file(image.path, trained.preprocess)  # decoded once for both graphs
        for runner, detections in zip(runners, found):
            boxes, scores, labels, count = runner.detect(prepared, reps)
            n = int(np.asarray(count).reshape(-1)[0])
            detections.append(ImageDetections(prepared.to_original(boxes[:n]).astype(np.float32),
                                              np.asarray(scores[:n], np.float32),
                                              np.array([classes[int(label) - 1] for label in labels[:n]], np.int64)))
    ap50 = [detection_ap(split, detections, classes)["ap50"] for detections in found]
    described = f"AP50 of the {len(classes)} trained classes on {len(split)} images of {split.description}"
    return require_within(AccuracyCost(described, ap50[0], ap50[1], gate.max_points), fmt.name, log, "AP50")


def _metadata(trained: TrainedModel, checkpoint: str, canvas: int, graphs: dict, versions: dict) -> dict:
    """Everything but the fingerprint, ``files`` (add_fingerprint_and_gallery) and the verification results."""
    size = trained.model.size
    gallery = trained.gallery
    return {
        "schema_version": SCHEMA_VERSION,
        "task": "detection",
        "name": trained.config.name,
        "method": trained.method.name,
        "source_checkpoint": Path(checkpoint).name,
        "input": {"channels": 3, "height": canvas, "width": canvas, "dtype": "float32", "layout": "NCHW",
                  "name": "image"},
        "preprocess": trained.preprocess.to_dict(),
        "embedding": {"dim": int(gallery.representatives.shape[2]), "normalized": True},
        "head": {"distance": gallery.distance, "sigma": gallery.sigma,
                 "reps_per_class": int(gallery.representatives.shape[1])},
        "detection": {"max_detections": size.detections_per_image, "canvas": canvas,
                      "score_threshold": size.score_threshold, "nms_iou": size.nms_iou},
        "class_names": list(trained.class_names),
        "gallery": "gallery.npz",
        "model": "model.pt",
        "graphs": graphs,
        "versions": versions,
    }


def verify_detector(trained: TrainedModel, folder: Path, metadata: dict, data_root: str | None,
                    log: Callable[[str], None], gated: dict[str, bool] | None = None) -> dict:
    """Each exported format on real test images against eager PyTorch; raises when one disagrees.
    ``gated[graph_key]`` False: a lossy format (int8), whose differences are reported only."""
    from repmet.data.detection import SupportBox
    from repmet.methods.detector_regions import embed_boxes, image_tensor
    from repmet.evaluate.detection_match import unmatched_detections
    from repmet.methods.detector import load_detection_split
    from repmet.runtime.detection_preprocess import prepare_detection_file

    config = trained.config
    if data_root:
        config.data.root = data_root
    try:
        split = load_detection_split(config, config.data.test_split)
    except UserError as exc:
        raise UserError(f"verifying the export needs the detector's real test images ({exc}); pass --data-root DIR")
    images = [split.images[i] for i in np.linspace(0, len(split) - 1, min(VERIFY_IMAGES, len(split))).round().astype(int)]
    from repmet.runtime.backends import verifying_backend

    from repmet.export.formats.plugin import EXPORT_FORMATS

    exporters = {f.graph_key: f for _, f in EXPORT_FORMATS.items()}
    backends = {}
    for fmt, files in metadata["graphs"].items():
        runner = exporters[fmt].detector_verification_runner(folder, files) if fmt in exporters else None
        backends[fmt] = runner or verifying_backend(fmt).detector_runner(folder / files["detection"],
                                                                         folder / files["box_embedding"], "cpu", 0)
    model, spec = trained.model.eval(), trained.preprocess
    reps = trained.gallery.representatives.numpy().astype(np.float32)
    tallies = {fmt: {"detections": 0, "unmatched": 0, "max_abs_box_embedding": 0.0} for fmt in backends}
    for image in images:
        prepared = prepare_detection_file(image.path, spec)
        with torch.no_grad():
            (eager,) = model([image_tensor(image.path)])
        reference = tuple(eager[k].numpy() for k in ("boxes", "scores", "labels"))
        support = [SupportBox(image, box) for box in image.boxes[:4]]
        eager_embeddings = embed_boxes(model, support, torch.device("cpu")).numpy() if support else None
        for fmt, backend in backends.items():
            boxes, scores, labels, count = backend.detect(prepared, reps)
            n = int(np.asarray(count).reshape(-1)[0])
            counted, missing = unmatched_detections(reference, (prepared.to_original(boxes[:n]), scores[:n], labels[:n]),
                                                    0.99, SCORE_TOLERANCE)
            tally = tallies[fmt]
            tally["detections"] += counted
            tally["unmatched"] += missing
            if support:
                ours = backend.embed_boxes(prepared, prepared.to_resized(image.boxes[:4]))
                tally["max_abs_box_embedding"] = max(tally["max_abs_box_embedding"],
                                                     float(np.abs(ours - eager_embeddings).max()))
    described = f"{len(images)} images of {split.description}"
    results = {}
    for fmt, tally in tallies.items():
        total, unmatched, worst = tally["detections"], tally["unmatched"], tally["max_abs_box_embedding"]
        log(f"verified {fmt} on {described}: {total - unmatched} of {total} PyTorch detections matched (same label, "
            f"IoU >= 0.99, score within {SCORE_TOLERANCE:g}), {unmatched} unmatched; box embeddings max |diff| "
            f"{worst:.2e}")
        passed = unmatched <= MAX_UNMATCHED * max(total, 1) and worst <= EMBEDDING_TOLERANCE and total > 0
        is_gated = (gated or {}).get(fmt, True)
        results[fmt] = {"inputs": described, **tally, "passed": passed or not is_gated, "gated": is_gated}
        if not passed and is_gated:
            raise UserError(f"the {fmt} export does not reproduce PyTorch on {described}: {unmatched} of {total} "
                            f"detections unmatched, box embeddings differ by up to {worst:.2e}; nothing was "
                            f"written")
    return results
