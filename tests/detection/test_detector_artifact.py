"""The detector's artifact (metric-export of the shipped fsod-mini detector) and the
FewShotDetector runtime on real images: enrollment from boxes and detection through ONNX
Runtime and torch against the eager model, gallery files, and bad input."""

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SHIPPED_DETECTOR
from repmet.data.detection import load_voc_detection, sample_support
from repmet.errors import UserError
from repmet.methods.detector_regions import enrolled_representatives, image_tensor
from repmet.evaluate.detection_match import unmatched_detections
from repmet.methods import open_checkpoint
from repmet.runtime import Artifact, FewShotClassifier, FewShotDetector


@pytest.fixture(scope="module")
def fsod(data_root):
    root = data_root / "fsod-mini"
    return load_voc_detection(root, "train"), load_voc_detection(root, "test")


def examples_of(split, name, count):
    index = split.class_names.index(name)
    return [(image.path, image.boxes[image.labels == index]) for image in split.images
            if (image.labels == index).any()][:count]


def test_the_artifact_is_a_verified_detection_artifact(detector_artifact):
    artifact = Artifact.open(detector_artifact)
    meta = artifact.metadata
    assert meta["task"] == "detection" and meta["detection"]["canvas"] == 512
    assert set(meta["graphs"]["onnx"]) >= {"detection", "box_embedding", "detection_trt", "box_embedding_trt"}
    assert set(meta["graphs"]["torchscript"]) == {"detection", "box_embedding"}
    for fmt in ("onnx", "torchscript", "aoti"):
        check = meta["verification"][fmt]
        assert check["passed"] and check["detections"] >= 100 and check["unmatched"] <= 0.01 * check["detections"]
        assert check["max_abs_box_embedding"] <= 1e-4
    with pytest.raises(UserError, match="is a detection artifact; load it with FewShotDetector"):
        FewShotClassifier.load(detector_artifact, backend="onnxruntime")


def test_a_classifier_artifact_is_not_loaded_as_a_detector(omniglot_artifact):
    with pytest.raises(UserError, match="is a classification artifact; load it with FewShotClassifier"):
        FewShotDetector.load(omniglot_artifact)


def test_enrolled_classes_are_detected_as_the_eager_model_detects_them(detector_artifact, fsod, data_root):
    """Runtime enrollment + detection (ONNX Runtime and torch) against metric-eval's own
    enrollment (evaluate.detection) and the eager torchvision model, on real images."""
    train, test = fsod
    trained = open_checkpoint(SHIPPED_DETECTOR)
    model = trained.model.eval()
    gallery = model.region_gallery
    novel = ["Ambulance", "starfish"]
    support = sample_support(train, novel, 3, 0, 0)
    reps = enrolled_representatives(model, support, gallery.reps_per_class, 0, torch.device("cpu"))
    gallery.set_representatives(torch.cat([trained.gallery.representatives, reps]))
    names = list(trained.class_names) + novel
    pictures = [im for im in test.images if np.isin(im.labels, [test.class_names.index(n) for n in novel]).any()][:3]
    for backend in ("onnxruntime", "torchscript", "torch"):
        detector = FewShotDetector.load(detector_artifact, backend=backend)
        for name, boxes in support.items():
            detector.enroll(name, [(item.image.path, item.box[None]) for item in boxes])
        assert detector.labels == names
        total = missing = 0
        for image, found in zip(pictures, detector.detect([p.path for p in pictures], score_threshold=0.05)):
            with torch.no_grad():
                (eager,) = model([image_tensor(image.path)])
            kept = eager["scores"] >= 0.05  # the model keeps scores from 0.01; the runtime was asked for 0.05
            reference = (eager["boxes"][kept].numpy(), eager["scores"][kept].numpy(),
                         np.array([names[label - 1] for label in eager["labels"][kept].tolist()]))
            ours = (np.array([d.box for d in found], np.float32).reshape(-1, 4), np.array([d.score for d in found]),
                    np.array([d.label for d in found]))
            counted, unmatched = unmatched_detections(reference, ours, 0.99, 1e-3)
            total, missing = total + counted, missing + unmatched
        assert total >= 30 and missing <= 0.02 * total, (backend, missing, total)


def test_the_gallery_round_trips_and_refuses_another_models(detector_artifact, omniglot_artifact, fsod, tmp_path):
    train, _ = fsod
    detector = FewShotDetector.load(detector_artifact)
    detector.enroll("Ambulance", examples_of(train, "Ambulance", 2))
    saved = detector.save_gallery(tmp_path / "gallery.npz")
    again = FewShotDetector.load(detector_artifact)
    again.load_gallery(saved)
    assert again.labels == detector.labels
    np.testing.assert_array_equal(again.gallery.representatives, detector.gallery.representatives)
    other = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    other.enroll("a", [np.zeros((28, 28), np.uint8) + 255])
    with pytest.raises(UserError, match="was made with another model"):
        again.load_gallery(other.save_gallery(tmp_path / "omniglot.npz"))
    assert again.labels == detector.labels


def test_bad_enrollment_input_is_a_sentence_and_changes_nothing(detector_artifact, fsod, tmp_path):
    train, _ = fsod
    detector = FewShotDetector.load(detector_artifact)
    before = detector.labels
    path, boxes = examples_of(train, "Ambulance", 1)[0]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    for examples, message in [([], "from zero examples"),
                              ([(path, [[10, 10, 5, 40]])], "is empty"),
                              ([(path, [[0, 0, 10_000, 40]])], "lies outside the"),
                              ([(path, [])], "no boxes"),
                              ([(path, boxes), (broken, [[0, 0, 4, 4]])], "broken.jpg")]:
        with pytest.raises(UserError, match=message):
            detector.enroll("Ambulance", examples)
        assert detector.labels == before
    with pytest.raises(UserError, match="does not run detection artifacts"):
        FewShotDetector.load(detector_artifact, backend="tensorrt")


def test_metric_predict_detect_enrolls_a_voc_or_coco_support_set_and_draws(detector_artifact, fsod, data_root,
                                                                           tmp_path):
    import json
    import shutil
    import subprocess

    from PIL import Image

    from conftest import script
    from detection_fixtures import voc_to_coco

    train, test = fsod
    source = data_root / "fsod-mini"
    ambulance = train.class_names.index("Ambulance")
    ids = [im.path.stem for im in train.images if set(im.labels.tolist()) == {ambulance}][:2]
    voc = tmp_path / "support"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / folder).mkdir(parents=True)
    for image_id in ids:
        shutil.copy(source / "JPEGImages" / f"{image_id}.jpg", voc / "JPEGImages")
        shutil.copy(source / "Annotations" / f"{image_id}.xml", voc / "Annotations")
    (voc / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids) + "\n")
    coco = tmp_path / "coco"
    shutil.copytree(voc / "JPEGImages", coco / "images")
    (coco / "support.json").write_text(json.dumps(voc_to_coco(voc, "train")))
    queries = [str(im.path) for im in test.images if ambulance in im.labels.tolist()][:2]

    outputs = []
    for n, support in enumerate((voc, coco / "support.json")):
        run = subprocess.run([script("metric-predict"), str(detector_artifact), "--detect", "--support", str(support),
                              *[a for q in queries for a in ("--query", q)], "--score", "0.1", "--json",
                              "--draw", str(tmp_path / f"drawn{n}")], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs.append(json.loads(run.stdout))
    assert [row["detections"] for row in outputs[0]["predictions"]] == \
        [row["detections"] for row in outputs[1]["predictions"]] and outputs[0]["classes"][-1] == "Ambulance"

    detector = FewShotDetector.load(detector_artifact)
    detector.enroll("Ambulance", [(voc / "JPEGImages" / f"{i}.jpg",
                                   train.images[[im.path.stem for im in train.images].index(i)].boxes) for i in ids])
    expected = detector.detect(queries, score_threshold=0.1)  # 2 shots: Ambulance scores 0.13 and 0.17 here
    for row, found in zip(outputs[0]["predictions"], expected, strict=True):
        assert [d["label"] for d in row["detections"]] == [d.label for d in found]
        assert np.allclose([d["score"] for d in row["detections"]], [d.score for d in found], atol=1e-6)
    assert any(d["label"] == "Ambulance" for row in outputs[0]["predictions"] for d in row["detections"])
    for query in queries:
        drawn = Image.open(tmp_path / "drawn0" / f"{Path(query).stem}.png")
        assert drawn.size == Image.open(query).size


def test_the_detector_runs_on_onnxruntime_with_torch_blocked(detector_artifact, fsod):
    import subprocess
    import sys
    import textwrap

    from conftest import BLOCK_TORCH, PROJECT_ROOT

    train, test = fsod
    path, boxes = examples_of(train, "Ambulance", 1)[0]
    code = BLOCK_TORCH + textwrap.dedent(f"""
        from repmet.runtime import FewShotDetector
        detector = FewShotDetector.load({str(detector_artifact)!r}, backend="auto")
        detector.enroll("Ambulance", [({str(path)!r}, {boxes.tolist()!r})])
        (found,) = detector.detect([{str(path)!r}], score_threshold=0.3)
        print(detector.backend.name, any(d.label == "Ambulance" for d in found), "torch" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["onnxruntime", "True", "False"]


def test_detect_from_several_threads_while_a_class_is_enrolled(detector_artifact, fsod):
    """Concurrent detect calls see the gallery before or after a concurrent enroll, never half of
    it: every result equals one of the two sequential answers."""
    from concurrent.futures import ThreadPoolExecutor

    train, test = fsod
    detector = FewShotDetector.load(detector_artifact)
    queries = [image.path for image in test.images[:3]]
    before = detector.detect(queries, score_threshold=0.2)
    examples = examples_of(train, "starfish", 2)
    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(detector.detect, queries, 0.2) for _ in range(3)]
        pool.submit(detector.enroll, "starfish", examples).result()
        results = [r.result() for r in running]
    after = detector.detect(queries, score_threshold=0.2)

    def key(found):
        return [[(d.label, round(d.score, 4)) for d in image] for image in found]

    assert "starfish" in detector.labels and key(before) != key(after)
    for result in results:
        assert key(result) in (key(before), key(after))
