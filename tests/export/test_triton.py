"""metric-export --format triton: a Triton model repository inside the artifact, parsed into Triton's
own ModelConfig message, held to Triton's repository and ensemble rules, and run step by step
against PyTorch at export. (No Triton server can be installed from the package registries: the
tritonserver wheel on PyPI is an empty placeholder.)"""

import json
import shutil

import numpy as np
import pytest

from conftest import SHIPPED_PROTONETS
from repmet.errors import UserError
from repmet.export.artifact_writer import export_artifact
from repmet.export.formats.triton.check import EnsembleRunner, check_repository, parse_config

pytest.importorskip("tritonclient")


@pytest.fixture(scope="module")
def triton_artifact(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("triton") / "protonets_triton"
    export_artifact(str(SHIPPED_PROTONETS), out, ["triton"], data_root=str(data_root), log=lambda _: None,
                    max_batch=32)
    return out


def test_the_repository_holds_embedding_head_and_ensemble(triton_artifact):
    metadata = json.loads((triton_artifact / "metadata.json").read_text())
    graphs = metadata["graphs"]["triton"]
    root = triton_artifact / graphs["repository"]
    models = graphs["models"]
    assert sorted(p.name for p in root.iterdir()) == sorted(models.values())
    configs = check_repository(root)
    embedding, head, ensemble = (configs[models[k]] for k in ("embedding", "head", "ensemble"))
    assert embedding.platform == "onnxruntime_onnx" and embedding.max_batch_size == 32
    assert embedding.HasField("dynamic_batching")
    assert list(embedding.input[0].dims) == [1, 28, 28] and list(embedding.output[0].dims) == [64]
    assert head.max_batch_size == 0 and [t.name for t in head.input] == ["embeddings", "representatives"]
    assert ensemble.platform == "ensemble"
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == [models["embedding"], models["head"]]
    assert (root / models["ensemble"] / "1").is_dir()  # an ensemble has no file, but a version
    onnx_bytes = (triton_artifact / "embedding.onnx").read_bytes()
    assert (root / models["embedding"] / "1" / "model.onnx").read_bytes() == onnx_bytes
    for name, digest in graphs["repository_sha256"].items():
        assert (root / name).is_file() and len(digest) == 64
    check = metadata["verification"]["triton"]
    assert check["passed"] and check["max_abs_embedding"] <= 1e-4 and check["top1_agreement"] == 1.0


def test_the_ensemble_routes_images_and_representatives_to_the_runtimes_answer(triton_artifact, data_root):
    """One ensemble request (images + enrolled prototypes) answers what FewShotClassifier answers."""
    from artifact_fixtures import omniglot_class_images
    from repmet.runtime import FewShotClassifier
    from repmet.runtime.preprocess import preprocess_batch

    classifier = FewShotClassifier.load(triton_artifact, backend="onnxruntime")
    classes = omniglot_class_images(data_root, classes=5)
    for label, images in classes:
        classifier.enroll(label, images[:1])
    queries = [image for _, images in classes for image in images[1:4]]
    expected = classifier.classify(queries, top_k=5)
    metadata = json.loads((triton_artifact / "metadata.json").read_text())
    runner = EnsembleRunner(triton_artifact / "triton", metadata["graphs"]["triton"]["models"]["ensemble"])
    reps = np.ascontiguousarray(classifier.gallery.representatives, np.float32)
    answer = runner.run({"images": preprocess_batch(queries, classifier.artifact.preprocess), "representatives": reps})
    assert set(answer) == {"embeddings", "distances", "posteriors"}
    for row, prediction in zip(answer["posteriors"], expected):
        ours = {classifier.labels[i]: p for i, p in enumerate(row)}
        for label, posterior in zip(prediction.labels, prediction.posteriors):
            assert abs(ours[label] - posterior) <= 1e-5


@pytest.mark.parametrize("breakage, rule", [
    ("rename", "must be the folder's name"),
    ("no_version", "needs a version folder"),
    ("unknown_tensor", "before anything writes it"),
    ("wrong_dims", "does not fit the graph's"),
    ("unwritten_output", "is unused|is not written"),
    ("batch_too_large", "exceeds"),
    ("not_protobuf", "is not a Triton model configuration"),
])
def test_a_broken_repository_is_refused_with_the_rule_it_breaks(triton_artifact, tmp_path, breakage, rule):
    metadata = json.loads((triton_artifact / "metadata.json").read_text())
    models = metadata["graphs"]["triton"]["models"]
    root = tmp_path / "repo"
    shutil.copytree(triton_artifact / "triton", root)
    config = {k: root / v / "config.pbtxt" for k, v in models.items()}
    edit = {
        "rename": lambda: _replace(config["head"], f'name: "{models["head"]}"', 'name: "other"'),
        "no_version": lambda: (root / models["ensemble"] / "1").rmdir(),
        "unknown_tensor": lambda: _replace(config["ensemble"], 'value: "representatives"', 'value: "gallery"'),
        "wrong_dims": lambda: _replace(config["embedding"], "dims: [ 1, 28, 28 ]", "dims: [ 1, 32, 32 ]"),
        "unwritten_output": lambda: _replace(config["ensemble"], 'key: "distances"\n        value: "distances"',
                                             'key: "distances"\n        value: "distances_unused"'),
        "batch_too_large": lambda: _replace(config["ensemble"], "max_batch_size: 0", "max_batch_size: 64"),
        "not_protobuf": lambda: config["head"].write_text("name: head {"),
    }
    edit[breakage]()
    with pytest.raises(UserError, match=rule):
        check_repository(root)


def _replace(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_engine_in_the_artifact_adds_the_plan_variant(triton_artifact, tmp_path):
    """Where the artifact has a TensorRT engine of its embedding (--format trt on a GPU), the repository
    gets a tensorrt_plan model with the ONNX model's tensors and batching, and an ensemble chaining it
    with the same head. No engine can be built here (no GPU, no TensorRT): this checks the repository's
    structure, with placeholder bytes where the engine goes (the check reads only its presence)."""
    from repmet.export.formats.triton.repository import write_repository

    root = tmp_path / "repo"
    plan = tmp_path / "embedding.plan"
    plan.write_bytes(b"placeholder: no TensorRT engine can be built on this machine")
    names = write_repository(root, "protonets", triton_artifact / "embedding.onnx", triton_artifact / "head.onnx",
                             (1, 28, 28), 64, 32, embedding_plan=plan)
    configs = check_repository(root)
    variant, onnx_model = configs[names["embedding_trt"]], configs[names["embedding"]]
    assert variant.platform == "tensorrt_plan" and variant.max_batch_size == 32 and variant.HasField("dynamic_batching")
    assert [(t.name, list(t.dims)) for t in (*variant.input, *variant.output)] == \
        [(t.name, list(t.dims)) for t in (*onnx_model.input, *onnx_model.output)]
    assert (root / names["embedding_trt"] / "1" / "model.plan").read_bytes() == plan.read_bytes()
    steps = [s.model_name for s in configs[names["ensemble_trt"]].ensemble_scheduling.step]
    assert steps == [names["embedding_trt"], names["head"]]
    assert [s.model_name for s in configs[names["ensemble"]].ensemble_scheduling.step][0] == names["embedding"]
    _replace(root / names["embedding_trt"] / "config.pbtxt", "max_batch_size: 32", "max_batch_size: 16")
    with pytest.raises(UserError, match="must be those of"):
        check_repository(root)
    (root / names["embedding_trt"] / "1" / "model.plan").unlink()
    with pytest.raises(UserError, match="engine file is missing"):
        check_repository(root)


def test_parse_config_names_the_file(tmp_path):
    bad = tmp_path / "config.pbtxt"
    bad.write_text("max_batch_size: many")
    with pytest.raises(UserError, match=str(bad)):
        parse_config(bad)


@pytest.fixture(scope="module")
def triton_detector(data_root, tmp_path_factory):
    from conftest import SHIPPED_DETECTOR

    out = tmp_path_factory.mktemp("triton_detector") / "detector_triton"
    export_artifact(str(SHIPPED_DETECTOR), out, ["triton"], data_root=str(data_root), log=lambda _: None)
    return out


def test_the_detector_repository_serves_what_the_runtime_detects(triton_detector, data_root):
    """Two unbatched models whose tensors (names, shapes, INT64 labels and count) are the graphs';
    a novel class enrolled through FewShotDetector, then the repository's detection model, fed the
    same prepared image and representatives as Triton would receive them, answers the runtime's
    detections; and the export verified it against PyTorch on real test images."""
    from repmet.annotations import load_voc_detection
    from repmet.export.formats.triton.check import detector_runner
    from repmet.runtime import FewShotDetector
    from repmet.runtime.detection_preprocess import prepare_detection_image
    from repmet.imaging import open_rgb

    metadata = json.loads((triton_detector / "metadata.json").read_text())
    graphs = metadata["graphs"]["triton"]
    root, models = triton_detector / graphs["repository"], graphs["models"]
    configs = check_repository(root)
    assert sorted(configs) == sorted(models.values())
    detection, embedding = configs[models["detection"]], configs[models["box_embedding"]]
    assert detection.max_batch_size == 0 and embedding.max_batch_size == 0
    assert [t.name for t in detection.input] == ["image", "image_size", "representatives"]
    types = {t.name: t.data_type for t in detection.output}
    from tritonclient.grpc import model_config_pb2

    assert types["labels"] == types["count"] == model_config_pb2.TYPE_INT64
    assert types["boxes"] == types["scores"] == model_config_pb2.TYPE_FP32
    dim = np.load(triton_detector / "gallery.npz")["representatives"].shape[-1]
    assert list(detection.input[2].dims)[-1] == dim and len(embedding.output[0].dims) == 2
    check = metadata["verification"]["triton"]
    assert check["passed"] and check["detections"] > 100 and check["unmatched"] == 0

    split = load_voc_detection(data_root / "fsod-mini", "train")
    starfish = split.class_names.index("starfish")
    shots = [(item.path, item.boxes[item.labels == starfish][:1].tolist()) for item in split.images
             if (item.labels == starfish).any()][:3]
    runtime = FewShotDetector.load(triton_detector, backend="onnxruntime")
    runtime.enroll("starfish", shots)
    test = load_voc_detection(data_root / "fsod-mini", "test")
    query = next(item.path for item in test.images if (item.labels == test.class_names.index("starfish")).any())
    expected = runtime.detect(query, score_threshold=0.0)[0]
    served = detector_runner(root, models)
    spec = metadata["preprocess"]
    prepared = prepare_detection_image(np.asarray(open_rgb(query)), spec["min_size"], spec["max_size"], spec["mean"],
                                       spec["std"])
    boxes, scores, labels, count = served.detect(prepared, runtime.galleries.current.representatives)
    n = int(np.asarray(count).reshape(-1)[0])
    assert n == len(expected) > 0
    np.testing.assert_allclose(prepared.to_original(boxes[:n]), [d.box for d in expected], atol=1e-3)
    np.testing.assert_allclose(scores[:n], [d.score for d in expected], atol=1e-5)


def test_a_detector_config_with_the_wrong_type_is_refused(triton_detector, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(triton_detector / "triton", root)
    models = json.loads((triton_detector / "metadata.json").read_text())["graphs"]["triton"]["models"]
    config = root / models["detection"] / "config.pbtxt"
    text = config.read_text()
    at = text.index('name: "labels"')
    config.write_text(text[:at] + text[at:].replace("TYPE_INT64", "TYPE_FP32", 1))
    with pytest.raises(UserError, match=r"labels is TYPE_FP32 in the config but TYPE_INT64 in the graph"):
        check_repository(root)
