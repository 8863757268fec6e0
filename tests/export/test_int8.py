"""metric-export --format int8: an embedding graph quantized by ONNX Runtime, calibrated on real
images, held to the accuracy it costs against fp32 on the checkpoint's test images."""

import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from artifact_fixtures import omniglot_class_images
from conftest import SHIPPED_PROTONETS
from repmet.errors import UserError
from repmet.export.accuracy_cost import episode_accuracy, few_shot_episodes, gallery_accuracy
from repmet.export.artifact_writer import export_artifact
from repmet.models import DistanceHead
from repmet.runtime import FewShotClassifier


def test_the_int8_graph_is_quantized_and_its_accuracy_cost_recorded(int8_artifact):
    metadata = json.loads((int8_artifact / "metadata.json").read_text())
    assert set(metadata["graphs"]) == {"onnx", "onnx_int8"}  # int8 builds on the fp32 onnx graphs
    graphs = metadata["graphs"]["onnx_int8"]
    assert graphs["head"] == metadata["graphs"]["onnx"]["head"]  # the distance head stays fp32
    model = onnx.load(int8_artifact / graphs["embedding"])
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 4  # every convolution of conv4
    assert graphs["calibration"]["images"] >= 100
    assert "test" not in graphs["calibration"]["source"]  # calibrated on training images, checked on test images
    accuracy = metadata["verification"]["int8"]["accuracy"]
    assert accuracy["passed"] and accuracy["allowed_points"] == 1.0
    assert accuracy["reference"] > 0.9 and abs(accuracy["cost_points"]) <= 1.0
    assert "5-way 1-shot" in accuracy["protocol"]


def test_auto_runs_the_int8_graph_and_it_classifies_like_fp32(int8_artifact, data_root):
    quantized = FewShotClassifier.load(int8_artifact)  # auto: the int8 backend comes first on a CPU
    assert quantized.backend.name == "onnxruntime-int8"
    fp32 = FewShotClassifier.load(int8_artifact, backend="onnxruntime")
    classes = omniglot_class_images(data_root, classes=10)
    for classifier in (quantized, fp32):
        for label, images in classes:
            classifier.enroll(label, images[:1])
    queries = [image for _, images in classes for image in images[1:11]]
    truth = [label for label, _ in classes for _ in range(10)]
    ours, theirs = quantized.classify(queries), fp32.classify(queries)
    agreement = np.mean([a.label == b.label for a, b in zip(ours, theirs)])
    assert agreement >= 0.9  # 8-bit activations move near ties, not the answer
    assert np.mean([p.label == t for p, t in zip(ours, truth)]) >= 0.8


def test_an_int8_artifact_refuses_to_run_on_a_gpu(int8_artifact):
    with pytest.raises(UserError, match="int8 graphs run on the CPU"):
        FewShotClassifier.load(int8_artifact, backend="onnxruntime-int8", device="cuda")


def test_calibrating_on_blank_images_costs_accuracy_and_the_export_is_refused(data_root, tmp_path):
    """Activation ranges measured on images that hold nothing clip every real input: the accuracy
    check sees it and no artifact is written."""
    blank = tmp_path / "blank"
    blank.mkdir()
    for index in range(8):
        Image.new("L", (28, 28), 255).save(blank / f"{index}.png")  # white paper, no stroke
    out = tmp_path / "refused"
    with pytest.raises(UserError, match="--max-accuracy-cost") as error:
        export_artifact(str(SHIPPED_PROTONETS), out, ["int8"], data_root=str(data_root), log=lambda _: None,
                        format_options={"calibration": str(blank)})
    assert "points of accuracy against fp32" in str(error.value)
    assert not out.exists()


def test_a_calibration_folder_without_images_is_a_sentence(data_root, tmp_path):
    with pytest.raises(UserError, match=r"--calibration .*found 0"):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "out", ["int8"], data_root=str(data_root),
                        log=lambda _: None, format_options={"calibration": str(tmp_path)})


def _naive_nearest(head_distance: str, queries: np.ndarray, classes: list[np.ndarray]) -> list[int]:
    """For each query, the class whose closest representative is nearest (squared euclidean or cosine)."""
    answers = []
    for q in queries:
        best, answer = None, None
        for index, reps in enumerate(classes):
            for r in reps:
                d = float(((q - r) ** 2).sum()) if head_distance == "sqeuclidean" else 1.0 - float(
                    q @ r / np.linalg.norm(q) / np.linalg.norm(r))
                if best is None or d < best:
                    best, answer = d, index
        answers.append(answer)
    return answers


def test_the_accuracy_protocols_against_naive_loops():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 16)).astype(np.float32)
    labels = np.repeat(np.arange(6), 7)
    embeddings = (centres[labels] + rng.normal(scale=1.2, size=(len(labels), 16))).astype(np.float32)
    head = DistanceHead(sigma=0.5, distance="sqeuclidean")

    episodes = few_shot_episodes(labels, way=4, shot=2, episodes=25, seed=0)
    correct = total = 0
    for episode in episodes:
        prototypes = [embeddings[shots].mean(0, keepdims=True) for _, shots in episode]
        for index, (c, shots) in enumerate(episode):
            queries = [i for i in np.flatnonzero(labels == c) if i not in shots]
            answers = _naive_nearest("sqeuclidean", embeddings[queries], prototypes)
            correct += sum(a == index for a in answers)
            total += len(queries)
    assert 0 < correct < total  # the noise makes mistakes, so the comparison means something
    assert episode_accuracy(head, embeddings, labels, episodes) == pytest.approx(correct / total)

    reps = (centres[:, None, :] + rng.normal(scale=0.3, size=(6, 2, 16))).astype(np.float32)
    answers = _naive_nearest("sqeuclidean", embeddings, list(reps))
    naive = np.mean(np.array(answers) == labels)
    assert gallery_accuracy(head, embeddings, labels, torch.from_numpy(reps)) == pytest.approx(naive)


def test_episodes_are_seeded_and_refuse_too_few_classes():
    labels = np.repeat(np.arange(5), 3)
    first = few_shot_episodes(labels, 5, 1, 4, seed=7)
    again = few_shot_episodes(labels, 5, 1, 4, seed=7)
    assert all(np.array_equal(a[1], b[1]) for x, y in zip(first, again) for a, b in zip(x, y))
    for episode in first:
        assert sorted(c for c, _ in episode) == [0, 1, 2, 3, 4]
        assert all(labels[shots[0]] == c for c, shots in episode)
    with pytest.raises(ValueError, match="too few"):
        few_shot_episodes(labels, 6, 1, 1, seed=0)


def test_the_detector_is_quantized_in_its_trunks_only(int8_detector):
    metadata = json.loads((int8_detector / "metadata.json").read_text())
    graphs = metadata["graphs"]["onnx_int8"]
    for role in ("detection", "box_embedding"):
        model = onnx.load(int8_detector / graphs[role])
        quantized = [t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
        assert len(quantized) >= 40
        assert not [n for n in quantized if "_conv_stem" in n or "_conv_head" in n or "fpn" in n or "rpn" in n]
    check = metadata["verification"]["onnx_int8"]
    assert check["gated"] is False and check["detections"] > 0  # 8 bits move scores past 1e-3: reported only
    accuracy = check["accuracy"]
    assert accuracy["reference"] >= 0.3 and accuracy["passed"] and accuracy["cost_points"] <= 2.0
    assert "60 images" in accuracy["protocol"]


def test_the_int8_detector_finds_what_fp32_finds(int8_detector, data_root):
    """Two novel classes enrolled from 3 boxes each through both graphs: fp32's confident boxes
    (score >= 0.3) are found by int8 too (same label, IoU >= 0.6, score within 0.2: 8 bits move a
    score by up to about 0.12 here, and a box by a few pixels)."""
    from repmet.data.detection import load_voc_detection, sample_support
    from repmet.evaluate.detection_match import unmatched_detections
    from repmet.runtime import FewShotDetector

    root = data_root / "fsod-mini"
    train, test = load_voc_detection(root, "train"), load_voc_detection(root, "test")
    support = sample_support(train, ["Ambulance", "starfish"], 3, 0, 0)
    novel = [test.class_names.index(n) for n in support]
    pictures = [im.path for im in test.images if np.isin(im.labels, novel).any()][:10]
    quantized = FewShotDetector.load(int8_detector)
    assert quantized.backend.name == "onnxruntime-int8"
    fp32 = FewShotDetector.load(int8_detector, backend="onnxruntime")
    found = {}
    for name, detector, threshold in (("int8", quantized, 0.1), ("fp32", fp32, 0.3)):
        for label, items in support.items():
            detector.enroll(label, [(item.image.path, item.box[None]) for item in items])
        found[name] = [(np.array([d.box for d in ds], np.float32).reshape(-1, 4), np.array([d.score for d in ds]),
                        np.array([d.label for d in ds])) for ds in detector.detect(pictures, score_threshold=threshold)]
    counts = [unmatched_detections(theirs, ours, 0.6, 0.2) for ours, theirs in zip(found["int8"], found["fp32"])]
    total, missing = (sum(c[i] for c in counts) for i in (0, 1))
    assert total >= 4 and missing <= 0.25 * total, (missing, total)


def test_a_format_option_without_its_format_is_a_sentence(data_root, tmp_path):
    """--calibration is int8's own option (the CLI gets it from the format plug-in): given to an
    export that writes no int8 graphs it is refused, not silently ignored; an unknown one too."""
    with pytest.raises(UserError, match="--calibration applies to --format int8"):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "a", ["onnx"], data_root=str(data_root),
                        log=lambda _: None, format_options={"calibration": str(tmp_path)})
    with pytest.raises(UserError, match="unknown format option 'calibrate'"):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "b", ["int8"], data_root=str(data_root),
                        log=lambda _: None, format_options={"calibrate": str(tmp_path)})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
