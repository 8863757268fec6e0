"""AP from the maintained evaluator (pycocotools), checked against a naive AP50 written here on
detections made from the real fsod-mini test boxes."""

import numpy as np
import pytest

from repmet.data.detection import load_voc_detection
from repmet.evaluate.detection_ap import ImageDetections, detection_ap, precision_recall_at


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def naive_matches(truth, detections, c):
    """``[(score, matched)]`` of class ``c``'s detections in score order, greedily matched at IoU 0.5
    (each box at most once), and the number of boxes of ``c``."""
    found = sorted(((s, i, b) for i, d in enumerate(detections) for b, s, l in zip(d.boxes, d.scores, d.labels)
                    if l == c), key=lambda t: -t[0])
    gts = {i: [b for b, l in zip(im.boxes, im.labels) if l == c] for i, im in enumerate(truth.images)}
    used = {i: [False] * len(g) for i, g in gts.items()}
    positives = sum(len(g) for g in gts.values())
    tp = []
    for score, i, box in found:
        best, best_iou = -1, 0.5 - 1e-10
        for j, g in enumerate(gts[i]):
            if not used[i][j] and iou(box, g) >= best_iou:
                best, best_iou = j, iou(box, g)
        if best >= 0:
            used[i][best] = True
        tp.append((score, best >= 0))
    return tp, positives


def naive_ap50(truth, detections, c):
    """COCO's AP at IoU 0.5 for class ``c``: greedy matching in score order, precision made
    monotone, read at 101 recall points."""
    matches, positives = naive_matches(truth, detections, c)
    tp = np.array([hit for _, hit in matches], float)
    recall = np.cumsum(tp) / positives
    precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    for k in range(len(precision) - 2, -1, -1):
        precision[k] = max(precision[k], precision[k + 1])
    points = []
    for r in np.linspace(0, 1, 101):
        hit = np.searchsorted(recall, r, side="left")
        points.append(precision[hit] if hit < len(precision) else 0.0)
    return float(np.mean(points))


def jittered_detections(truth, rng):
    """Each true box found with some probability, shifted a little; plus false positives."""
    out = []
    for image in truth.images:
        boxes, scores, labels = [], [], []
        for box, label in zip(image.boxes, image.labels):
            if rng.random() < 0.7:
                size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
                boxes.append(box + rng.normal(0, 0.08, 4) * size)
                scores.append(rng.random())
                labels.append(label)
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, image.width - 20), rng.uniform(0, image.height - 20)
            boxes.append([x, y, x + 20, y + 20])
            scores.append(rng.random())
            labels.append(rng.integers(len(truth.class_names)))
        out.append(ImageDetections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores),
                                   np.array(labels, np.int64)))
    return out


def test_ap50_agrees_with_a_naive_computation_on_real_boxes(data_root):
    truth = load_voc_detection(data_root / "fsod-mini", "test")
    assert not any(image.difficult.any() for image in truth.images)  # the naive version knows no difficult boxes
    detections = jittered_detections(truth, np.random.default_rng(0))
    classes = list(range(len(truth.class_names)))
    result = detection_ap(truth, detections, classes)
    for c in classes:
        assert result["per_class_ap50"][truth.class_names[c]] == pytest.approx(naive_ap50(truth, detections, c),
                                                                              abs=2e-3)
    assert 0.3 < result["ap50"] < 0.95 and result["ap50_95"] < result["ap50"]


def test_perfect_detections_score_one_and_difficult_boxes_are_neither_hit_nor_miss(data_root):
    truth = load_voc_detection(data_root / "fsod-mini", "test")
    perfect = [ImageDetections(im.boxes, np.linspace(1, 0.5, len(im.boxes)), im.labels) for im in truth.images]
    result = detection_ap(truth, perfect, [0, 1, 2])
    assert result["ap50"] == pytest.approx(1.0) and result["ap50_95"] == pytest.approx(1.0)
    # mark one box difficult: detecting it or not changes nothing
    first = next(i for i, im in enumerate(truth.images) if len(im.boxes) > 1 and im.labels[0] == im.labels[1])
    hard = truth.images[first]
    truth.images[first] = type(hard)(hard.path, hard.width, hard.height, hard.boxes, hard.labels,
                                     np.array([True] + [False] * (len(hard.boxes) - 1)))
    c = int(hard.labels[0])
    with_it = detection_ap(truth, perfect, [c])["ap50"]
    without = [d if i != first else ImageDetections(d.boxes[1:], d.scores[1:], d.labels[1:]) for i, d in enumerate(perfect)]
    assert with_it == pytest.approx(1.0) and detection_ap(truth, without, [c])["ap50"] == pytest.approx(1.0)


def test_no_detections_score_zero_and_classes_without_boxes_are_left_out(data_root):
    truth = load_voc_detection(data_root / "fsod-mini", "test")
    empty = [ImageDetections(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, np.int64)) for _ in truth.images]
    result = detection_ap(truth, empty, [0, 1])
    assert result["ap50"] == 0.0 and all(v == 0.0 for v in result["per_class_ap50"].values())


def test_precision_and_recall_above_a_score_agree_with_naive_matching_on_real_boxes(data_root):
    truth = load_voc_detection(data_root / "fsod-mini", "test")
    detections = jittered_detections(truth, np.random.default_rng(1))
    classes = [0, 3, 5]
    thresholds = [0.0, 0.3, 0.8]
    result = precision_recall_at(truth, detections, classes, thresholds)
    per_class = [naive_matches(truth, detections, c) for c in classes]
    boxes = sum(positives for _, positives in per_class)
    for threshold, (precision, recall, kept) in zip(thresholds, result):
        hits = [hit for matches, _ in per_class for score, hit in matches if score >= threshold]
        assert kept == len(hits)
        assert precision == pytest.approx(sum(hits) / len(hits)) and recall == pytest.approx(sum(hits) / boxes)
    assert result[0][1] > result[2][1] and 0.2 < result[0][0] < 1.0  # a real trade-off, not a constant
