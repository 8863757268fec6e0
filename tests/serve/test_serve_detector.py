"""metric-serve with the shipped fsod-mini detector: a novel class (Ambulance) enrolled over HTTP
from 5 real train boxes is detected in real test images exactly as the Python runtime detects it
after the same enroll; bad boxes are 400 sentences."""

from urllib.parse import quote

import numpy as np

from repmet.data.detection import load_voc_detection
from repmet.runtime import FewShotDetector
from serve_tool import Server, b64

CLASS = "Ambulance"


def boxed_images(data_root, split: str, count: int):
    data = load_voc_detection(data_root / "fsod-mini", split)
    wanted = data.class_names.index(CLASS)
    chosen = [image for image in data.images if (image.labels == wanted).any()][:count]
    return [(image.path, image.boxes[image.labels == wanted].tolist()) for image in chosen]


def test_http_detections_equal_the_python_runtime_after_the_same_enroll(detector_artifact, data_root, tmp_path):
    support = boxed_images(data_root, "train", 5)
    queries = [path for path, _ in boxed_images(data_root, "test", 3)]
    local = FewShotDetector.load(detector_artifact, backend="onnxruntime")
    local.enroll(CLASS, support)
    expected = local.detect(queries, score_threshold=0.2)
    assert any(d.label == CLASS for found in expected for d in found), "the runtime itself finds no Ambulance"
    with Server(detector_artifact, "--backend", "onnxruntime", "--gallery", tmp_path / "g.npz") as server:
        examples = [{"image": b64(path), "boxes": boxes} for path, boxes in support]
        status, body, _ = server.call("POST", f"/classes/{quote(CLASS)}", {"examples": examples})
        assert status == 201 and body["used"] == sum(len(b) for _, b in support), body
        status, body, _ = server.call("POST", "/detect", {"images": [b64(q) for q in queries],
                                                          "score_threshold": 0.2})
        assert status == 200
        for got, want in zip(body["detections"], expected):
            assert [d["label"] for d in got] == [d.label for d in want]
            if want:
                assert np.allclose([d["box"] for d in got], [d.box for d in want], atol=0.02)
                assert np.allclose([d["score"] for d in got], [d.score for d in want], atol=1e-5)
        bad = [("boxes outside the image", {"examples": [{"image": b64(support[0][0]), "boxes": [[-50, -50, -10, -10]]}]}),
               ("a box of 3 numbers", {"examples": [{"image": b64(support[0][0]), "boxes": [[1, 2, 3]]}]}),
               ("images instead of examples", {"images": [b64(support[0][0])]})]
        for name, payload in bad:
            status, answer, _ = server.call("POST", "/classes/other", payload)
            assert status in (400, 422) and len(answer["error"].split()) >= 4, (name, status, answer)
        assert server.call("POST", "/classify", {"images": [b64(queries[0])]})[0] == 404
        assert [c["label"] for c in server.call("GET", "/classes")[1]["classes"]][-1] == CLASS
