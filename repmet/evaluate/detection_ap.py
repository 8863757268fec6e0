"""Average precision of detections, by the maintained COCO evaluator (pycocotools): AP50 (COCO's
101-point interpolation at IoU 0.5) per class and their mean, and AP50:95. Difficult (VOC) and
crowd (COCO) boxes are given to the evaluator as crowd regions, so detecting them is neither
rewarded nor punished, as in VOC's own evaluation."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from repmet.annotations.boxes import DetectionSplit


@dataclass(frozen=True)
class ImageDetections:
    """One image's detections: ``boxes [N, 4]`` (x1, y1, x2, y2 in its pixels), ``scores [N]``,
    ``labels [N]`` (indices into the ground truth's ``class_names``)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    return [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes]


def detection_ap(truth: DetectionSplit, detections: list[ImageDetections], classes: list[int]) -> dict:
    """``{"ap50": mean over classes with ground truth, "ap50_95": ..., "per_class_ap50": {name: AP or
    None when the split has no box of it}}`` for the classes ``classes`` (indices)."""
    evaluation = _coco_evaluation(truth, detections, classes)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.accumulate()
    precision = evaluation.eval["precision"]  # [IoU thresholds, recall points, classes, areas, max dets]
    per_class, per_class_95 = {}, []
    for position, c in enumerate(sorted(set(classes))):
        at50 = precision[0, :, position, 0, -1]
        per_class[truth.class_names[c]] = float(at50.mean()) if (at50 > -1).all() else None
        all_iou = precision[:, :, position, 0, -1]
        if (all_iou > -1).all():
            per_class_95.append(float(all_iou.mean()))
    scored = [v for v in per_class.values() if v is not None]
    return {"ap50": float(np.mean(scored)) if scored else None,
            "ap50_95": float(np.mean(per_class_95)) if per_class_95 else None,
            "per_class_ap50": per_class}


def precision_recall_at(truth: DetectionSplit, detections: list[ImageDetections], classes: list[int],
                        thresholds: list[float]) -> list[tuple[float, float, int]]:
    """``(precision, recall, detections kept)`` of the detections scoring at least each threshold, at
    IoU 0.5 with the COCO evaluator's own matching (one box per detection, difficult boxes neither
    found nor missed), pooled over ``classes``: what a user sees who keeps boxes above a threshold."""
    evaluation = _coco_evaluation(truth, detections, classes)
    everything = evaluation.params.areaRng[0]
    found = [e for e in evaluation.evalImgs if e is not None and e["aRng"] == everything]
    scores = np.concatenate([np.asarray(e["dtScores"], dtype=np.float64) for e in found] + [np.zeros(0)])
    matched = np.concatenate([e["dtMatches"][0] > 0 for e in found] + [np.zeros(0, bool)])
    counted = ~np.concatenate([e["dtIgnore"][0].astype(bool) for e in found] + [np.zeros(0, bool)])
    boxes = sum(int((~np.asarray(e["gtIgnore"], dtype=bool)).sum()) for e in found)
    out = []
    for threshold in thresholds:
        kept = counted & (scores >= threshold)
        true = int((kept & matched).sum())
        out.append((true / max(int(kept.sum()), 1), true / max(boxes, 1), int(kept.sum())))
    return out


def _coco_evaluation(truth: DetectionSplit, detections: list[ImageDetections], classes: list[int]):
    """pycocotools' ``COCOeval`` of ``detections`` against ``truth`` on ``classes``, evaluated
    (per image and class), not yet accumulated."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(truth.images):
        raise ValueError(f"{len(detections)} detection lists for {len(truth.images)} images")
    wanted = set(classes)
    images, annotations, results = [], [], []
    for image_id, (image, found) in enumerate(zip(truth.images, detections)):
        images.append({"id": image_id, "width": image.width, "height": image.height})
        for box, label, hard in zip(_xywh(image.boxes), image.labels, image.difficult):
            if int(label) in wanted:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                    "bbox": box, "area": box[2] * box[3], "iscrowd": int(hard), "ignore": int(hard)})
        for box, score, label in zip(_xywh(found.boxes), found.scores, found.labels):
            if int(label) in wanted:
                results.append({"image_id": image_id, "category_id": int(label), "bbox": box, "score": float(score)})
    ground_truth = COCO()
    ground_truth.dataset = {"images": images, "annotations": annotations,
                            "categories": [{"id": c, "name": truth.class_names[c]} for c in sorted(wanted)]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground_truth.createIndex()
        predicted = ground_truth.loadRes(results) if results else COCO()
        if not results:
            predicted.dataset = {"images": images, "annotations": [], "categories": ground_truth.dataset["categories"]}
            predicted.createIndex()
        evaluation = COCOeval(ground_truth, predicted, "bbox")
        evaluation.params.catIds = sorted(wanted)
        evaluation.evaluate()
    return evaluation
