"""metric-export: artifacts whose graphs agree with the PyTorch model on real images."""

import json
import shutil
import subprocess

import numpy as np
import onnx
import pytest
import torch

from conftest import PROJECT_ROOT, SHIPPED_PROTONETS, script
from repmet.data import load_few_shot_split, load_labeled_split
from repmet.data.transforms import TransformSpec
from repmet.errors import UserError
from repmet.export.artifact_writer import export_artifact
from repmet.export.exportable import load_exportable
from repmet.imaging import open_rgb
from repmet.runtime import Artifact
from repmet.artifact.reader import sha256_of
from repmet.runtime.backends import create_backend
from repmet.runtime.backends.tensorrt.cuda import tensorrt_unavailable_reason

CPU_BACKENDS = ["torch", "torchscript", "onnxruntime"]


def omniglot_batch(data_root, count=24):
    data = load_few_shot_split("omniglot", "test", data_root)
    return data.images[torch.arange(count) * 17 % data.num_classes, torch.arange(count) % 20].float().div(255).numpy()


def flowers_batch(data_root, count=6):
    data = load_labeled_split("flowers102", "test", data_root)
    transform = TransformSpec(224, 224).eval_transform()
    return torch.stack([transform(open_rgb(data.paths[i * 997])) for i in range(count)]).numpy()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_omniglot_export_matches_pytorch_on_real_images_at_any_batch_size(omniglot_artifact, data_root, backend):
    model = load_exportable(str(SHIPPED_PROTONETS))
    images = omniglot_batch(data_root)
    runner = create_backend(Artifact.open(omniglot_artifact), backend, "cpu")
    with torch.no_grad():
        reference = model.embedding(torch.from_numpy(images))
        reps = reference[:8, None, :]
        ref_distances, ref_posteriors = model.head(reference[8:], reps)
    for start, stop in [(0, 24), (0, 1), (3, 10)]:
        assert np.abs(runner.embed(images[start:stop]) - reference[start:stop].numpy()).max() <= 1e-4
    distances, posteriors = runner.head(runner.embed(images[8:]), reps.numpy())
    assert distances.shape == (16, 8, 1) and posteriors.shape == (16, 8)
    assert np.abs(posteriors - ref_posteriors.numpy()).max() <= 1e-4
    assert np.abs(distances - ref_distances.numpy()).max() <= 1e-4 * ref_distances.abs().max().item()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_flowers_export_matches_pytorch_with_its_trained_gallery(flowers_artifact, flowers_checkpoint, data_root,
                                                                 backend):
    model = load_exportable(str(flowers_checkpoint))
    images = flowers_batch(data_root)
    runner = create_backend(Artifact.open(flowers_artifact), backend, "cpu")
    with torch.no_grad():
        reference = model.embedding(torch.from_numpy(images))
        _, ref_posteriors = model.head(reference, torch.from_numpy(model.gallery.representatives))
    embeddings = runner.embed(images)
    assert np.abs(embeddings - reference.numpy()).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)  # the head L2-normalises
    _, posteriors = runner.head(embeddings, model.gallery.representatives)
    assert posteriors.shape == (6, 4) and np.abs(posteriors - ref_posteriors.numpy()).max() <= 1e-4


def test_the_head_takes_any_number_of_classes_and_representatives(omniglot_artifact):
    runner = create_backend(Artifact.open(omniglot_artifact), "onnxruntime", "cpu")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    for classes, k in [(1, 1), (7, 3), (500, 2)]:
        reps = rng.standard_normal((classes, k, 64)).astype(np.float32)
        distances, posteriors = runner.head(x, reps)
        naive = np.array([[[((xi - r) ** 2).sum() for r in cls] for cls in reps] for xi in x])
        np.testing.assert_allclose(distances, naive, rtol=1e-4, atol=1e-3)
        logits = -naive.min(axis=2)  # sigma^2 = 1/2 for Prototypical Networks
        expected = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(posteriors, expected / expected.sum(1, keepdims=True), atol=1e-5)


def test_metadata_describes_the_artifact_and_every_file_hash(omniglot_artifact, flowers_artifact):
    meta = json.loads((omniglot_artifact / "metadata.json").read_text())
    assert meta["schema_version"] == 1 and meta["task"] == "classification" and meta["method"] == "protonets"
    assert meta["input"] == {"channels": 1, "height": 28, "width": 28, "dtype": "float32", "layout": "NCHW",
                             "name": "images"}
    fingerprint = meta["embedding"].pop("fingerprint")
    assert meta["embedding"] == {"dim": 64, "normalized": False, "output": "embeddings"}
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert meta["head"]["sigma"] == pytest.approx(0.5 ** 0.5) and meta["head"]["distance"] == "sqeuclidean"
    assert {"torch", "onnx", "onnxruntime", "repmet"} <= set(meta["versions"])
    assert meta["graphs"]["onnx"]["exporter"] == "torchscript" and meta["graphs"]["onnx"]["opset"] == 17
    for name, entry in meta["files"].items():
        assert sha256_of(omniglot_artifact / name) == entry["sha256"]
    assert all(v["passed"] and v["max_abs_embedding"] <= 1e-4 for v in meta["verification"].values())
    flowers = json.loads((flowers_artifact / "metadata.json").read_text())
    assert flowers["class_names"] == ["001", "002", "003", "004"] and flowers["head"]["reps_per_class"] == 3
    assert flowers["preprocess"]["mean"] == pytest.approx([127 / 255] * 3) and flowers["embedding"]["normalized"] is True
    assert "gallery.npz" in flowers["files"] and len(flowers["embedding"]["fingerprint"]) == 64
    for graph in ("embedding.onnx", "head.onnx"):
        onnx.checker.check_model(str(flowers_artifact / graph), full_check=True)
    embedding = onnx.load(str(flowers_artifact / "embedding.onnx"))
    # SAME padding lives in the Conv nodes (repmet.ops.same_pad_conv): no Pad for runtimes to trip on
    assert not [n for n in embedding.graph.node if n.op_type == "Pad"]
    assert any(list(a.ints) == [0, 0, 1, 1] for n in embedding.graph.node if n.op_type == "Conv" for a in n.attribute
               if a.name == "pads")
    head = onnx.load(str(flowers_artifact / "head.onnx"))
    assert [i.name for i in head.graph.input] == ["embeddings", "representatives"]  # not constants
    assert not any(init.name == "representatives" for init in head.graph.initializer)


def test_metric_export_cli_writes_and_verifies_an_artifact(data_root, tmp_path):
    out = tmp_path / "artifact"
    result = subprocess.run([script("metric-export"), str(SHIPPED_PROTONETS), "--format", "onnx", "--out", str(out),
                             "--data-root", str(data_root), "--opset", "18"], capture_output=True, text=True,
                            cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert "verified onnx" in result.stdout and "top-1 agreement 100.0%" in result.stdout
    assert json.loads((out / "metadata.json").read_text())["graphs"]["onnx"]["opset"] == 18
    assert sorted(p.name for p in out.iterdir()) == ["embedding.onnx", "head.onnx", "metadata.json", "model.pt"]


def test_exporting_from_a_folder_of_images_when_the_dataset_is_absent(tmp_path, data_root):
    samples = tmp_path / "samples"
    samples.mkdir()
    for i, path in enumerate(sorted((data_root / "flowers-102" / "jpg").iterdir())[:4]):
        shutil.copy(path, samples / f"{i}.jpg")
    out = tmp_path / "a"
    meta = export_artifact(str(SHIPPED_PROTONETS), out, ["torchscript"], data_root=str(tmp_path / "nothing"),
                           samples_dir=str(samples), log=lambda _: None)
    assert meta["verification"]["torchscript"]["samples"] == 4
    with pytest.raises(UserError, match="needs real images.*--samples"):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "b", ["onnx"], data_root=str(tmp_path / "nothing"))


def test_an_export_that_disagrees_with_pytorch_is_refused_and_writes_nothing(data_root, tmp_path, monkeypatch):
    import repmet.export.formats.plugin as formats

    monkeypatch.setattr(formats, "FP32_TOLERANCE", 0.0)  # no export is bit-exact: every check must now fail
    with pytest.raises(UserError, match="disagrees with the PyTorch model.*the artifact was not written"):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "out", ["onnx"], data_root=str(data_root), log=lambda _: None)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_bad_export_requests_are_clear_errors(data_root, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match="is not empty and is not an artifact .mine.txt."):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "notes", ["onnx"], data_root=str(data_root))
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    with pytest.raises(UserError, match="--opset 9 is not supported"):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "o", ["onnx"], opset=9, data_root=str(data_root))
    with pytest.raises(UserError, match="--fp16 applies to TensorRT"):
        export_artifact(str(SHIPPED_PROTONETS), tmp_path / "o", ["onnx"], fp16=True, data_root=str(data_root))


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT and a GPU are present")
def test_tensorrt_export_without_tensorrt_or_gpu_is_one_clear_sentence(tmp_path):
    result = subprocess.run([script("metric-export"), str(SHIPPED_PROTONETS), "--format", "trt", "--out",
                             str(tmp_path / "t")], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot export --format trt here:") and result.stderr.count("\n") == 1
    assert not (tmp_path / "t").exists()


@pytest.mark.skipif(tensorrt_unavailable_reason() is not None, reason="needs TensorRT and a CUDA GPU")
@pytest.mark.parametrize("fp16", [False, True])
def test_tensorrt_engine_matches_pytorch(data_root, tmp_path, fp16):
    meta = export_artifact(str(SHIPPED_PROTONETS), tmp_path / "t", ["trt"], fp16=fp16, max_batch=32,
                           data_root=str(data_root), log=print)
    trt = meta["graphs"]["tensorrt"]
    assert trt["max_batch"] == 32 and trt["fp16"] is fp16 and trt["compute_capability"]
    check = meta["verification"]["trt"]
    assert check["top1_agreement"] >= (0.9 if fp16 else 1.0)
    if not fp16:
        assert check["max_abs_embedding"] <= 1e-4 and check["max_abs_posterior"] <= 1e-4


@pytest.mark.parametrize("config_name, overrides", [
    ("repmet_flowers_1_12_4.yaml", []),  # Inception-V3, fine-tuned, with its auxiliary head (dropped in export)
    ("repmet_flowers_lite0_cpu.yaml", ["model.name=resnet18"]),
    ("magnet_flowers_lite0_cpu.yaml", []),  # Magnet: its cluster centres become the gallery
])
def test_every_fine_grained_backbone_and_method_exports(config_name, overrides, data_root, tmp_path):
    from repmet.checkpoint import save_checkpoint
    from repmet.methods.config_loading import load_config
    from repmet.methods import get_method

    config = load_config(PROJECT_ROOT / "configs" / config_name,
                         [f"data.root={data_root}", "model.pretrained=false", "batch.classes=3", "batch.per_class=4",
                          *overrides])
    names = ["001", "002", "003"]
    method = get_method(config.method)
    model = method.build_model(config, names)
    torch.nn.init.normal_(model.head.fc2.weight)  # any weights will do: parity, not accuracy, is checked
    save_checkpoint({"model": model.state_dict(), "config": config.to_dict(), "epoch": 0, "class_names": names},
                    tmp_path / "c.pt")
    meta = export_artifact(str(tmp_path / "c.pt"), tmp_path / "a", ["onnx"], data_root=str(data_root),
                           log=lambda _: None)
    k = method.reps_per_class(config)
    assert meta["input"]["height"] == config.data.image_size and meta["head"]["reps_per_class"] == k
    assert meta["class_names"] == names and meta["verification"]["onnx"]["passed"]


def test_a_cosine_distance_head_exports_and_matches_its_definition(data_root, tmp_path):
    from repmet.checkpoint import save_checkpoint
    from repmet.methods.config_loading import load_config
    from repmet.methods import get_method

    config = load_config(PROJECT_ROOT / "configs" / "protonets_demo.yaml", [f"data.root={data_root}",
                                                                             "loss.distance=cosine"])
    torch.manual_seed(0)
    save_checkpoint({"model": get_method(config.method).build_model(config, []).state_dict(), "config": config.to_dict(), "epoch": 0},
                    tmp_path / "c.pt")
    meta = export_artifact(str(tmp_path / "c.pt"), tmp_path / "a", ["onnx", "torchscript"],
                           data_root=str(data_root), log=lambda _: None)
    assert meta["head"]["distance"] == "cosine"
    rng = np.random.default_rng(1)
    x, reps = rng.standard_normal((4, 64)).astype(np.float32), rng.standard_normal((6, 2, 64)).astype(np.float32)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    naive = 1.0 - np.einsum("bd,ckd->bck", unit(x), unit(reps))
    logits = -naive.min(axis=2)  # sigma^2 = 1/2
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for backend in ("onnxruntime", "torchscript"):
        distances, posteriors = create_backend(Artifact.open(tmp_path / "a"), backend, "cpu").head(x, reps)
        np.testing.assert_allclose(distances, naive, atol=1e-5)
        np.testing.assert_allclose(posteriors, expected, atol=1e-5)


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
def test_the_numpy_head_of_the_tensorrt_backend_equals_the_exported_head(distance):
    from repmet.models.distance_head import DistanceHead
    from repmet.runtime.backends import numpy_head

    rng = np.random.default_rng(2)
    x, reps = rng.standard_normal((5, 32)).astype(np.float32), rng.standard_normal((9, 3, 32)).astype(np.float32)
    with torch.no_grad():
        ref_d, ref_p = DistanceHead(distance, sigma=0.8)(torch.from_numpy(x), torch.from_numpy(reps))
    d, p = numpy_head(x, reps, distance, 0.8)
    np.testing.assert_allclose(d, ref_d.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(p, ref_p.numpy(), atol=1e-6)
