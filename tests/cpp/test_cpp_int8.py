"""The C++ runtime on int8 artifacts (metric-export --format int8): it runs the same quantized
ONNX graphs through the same ONNX Runtime library as the Python runtime's onnxruntime-int8
backend, so both give the same answers on real images; ``auto`` picks int8 as Python does."""

import json

import numpy as np

from cpp_tool import run_tool, write_ambulance_coco
from repmet.runtime import FewShotClassifier, FewShotDetector

TOLERANCE = 1e-5


def test_cpp_int8_classifies_as_python_int8(predict_tool, int8_artifact, omniglot_images):
    from repmet.runtime.cli_predict import support_classes

    support, queries = omniglot_images
    run = run_tool(predict_tool, int8_artifact, "--support", support, "--top-k", 3, "--json", "--query", *queries)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["backend"] == "int8"  # auto: the int8 graphs first on the CPU
    python = FewShotClassifier.load(int8_artifact)
    assert python.backend.name == "onnxruntime-int8"
    python.clear()
    for label, images in support_classes(support).items():
        python.enroll(label, images)
    expected = python.classify(queries, top_k=3)
    for row, theirs in zip(report["predictions"], expected, strict=True):
        assert row["labels"][0] == theirs.labels[0], row["image"]
        ours = dict(zip(row["labels"], row["posteriors"]))
        for label, posterior in zip(theirs.labels, theirs.posteriors):
            if label in ours:
                assert abs(ours[label] - posterior) <= TOLERANCE, (row["image"], label)


def test_cpp_int8_detects_as_python_int8(predict_tool, int8_detector, data_root, tmp_path):
    from repmet.data.detection import load_voc_detection
    from repmet.evaluate.detection_match import unmatched_detections

    support, examples = write_ambulance_coco(data_root, tmp_path)
    test = load_voc_detection(data_root / "fsod-mini", "test")
    ambulance = test.class_names.index("Ambulance")
    queries = [im.path for im in test.images if ambulance in im.labels.tolist()][:2]
    run = run_tool(predict_tool, int8_detector, "--detect", "--support", support, "--score", 0.05, "--json",
                   "--query", *queries)
    assert run.returncode == 0, run.stderr[-2000:]
    ours = json.loads(run.stdout)
    assert ours["backend"] == "int8"
    detector = FewShotDetector.load(int8_detector)
    assert detector.backend.name == "onnxruntime-int8"
    detector.enroll("Ambulance", [(image.path, image.boxes) for image in examples])
    index = {name: i for i, name in enumerate(detector.labels)}

    def arrays(found):
        return (np.array([d["box"] for d in found], np.float32).reshape(-1, 4),
                np.array([d["score"] for d in found], np.float32), np.array([index[d["label"]] for d in found]))

    checked = 0
    for row, theirs in zip(ours["predictions"], detector.detect(queries, score_threshold=0.05), strict=True):
        reference = arrays([{"box": d.box, "score": d.score, "label": d.label} for d in theirs])
        candidate = arrays(row["detections"])
        for a, b in ((reference, candidate), (candidate, reference)):
            counted, missing = unmatched_detections(a, b, 0.99, 1e-3)
            assert missing <= 0.01 * max(counted, 1), (row["image"], missing, counted)
        checked += len(theirs)
    assert checked >= 20
    assert any(d["label"] == "Ambulance" for row in ours["predictions"] for d in row["detections"])
