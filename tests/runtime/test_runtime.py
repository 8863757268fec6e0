"""repmet.runtime: preprocessing identical to training, enrolment, classification, galleries,
threads, and bad input that leaves the classifier as it was."""

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from artifact_fixtures import omniglot_class_images
from conftest import PROJECT_ROOT, script
from repmet.data import load_few_shot_split, load_labeled_split
from repmet.data.transforms import TransformSpec
from repmet.models import input_normalization
from repmet.errors import UserError
from repmet.imaging import open_rgb
from repmet.runtime import FewShotClassifier
from repmet.runtime.preprocess import preprocess


def state_of(classifier):
    g = classifier.gallery
    return g.labels, g.representatives.copy(), g.counts.copy()


def assert_unchanged(classifier, before):
    labels, reps, counts = state_of(classifier)
    assert labels == before[0] and np.array_equal(reps, before[1]) and np.array_equal(counts, before[2])


# ---------------------------------------------------------------- preprocessing
def test_flowers_preprocessing_equals_the_training_evaluation_transform(flowers_artifact, data_root):
    spec = FewShotClassifier.load(flowers_artifact, backend="onnxruntime").preprocess_spec
    mean, std = input_normalization("efficientnet_lite0")  # the Lite0 configs' data.normalization: backbone
    transform = TransformSpec(224, 224, mean, std).eval_transform()
    data = load_labeled_split("flowers102", "test", data_root)
    for path in data.paths[::1200]:  # portrait and landscape images of several sizes
        expected = transform(open_rgb(path)).numpy()
        assert np.array_equal(preprocess(path, spec), expected), path


def test_omniglot_preprocessing_of_the_original_pngs_equals_the_training_loader(omniglot_artifact, data_root):
    spec = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime").preprocess_spec
    data = load_few_shot_split("omniglot", "test", data_root)
    row = next(i for i, name in enumerate(data.class_names) if name.endswith("rot000"))
    alphabet, character, _ = data.class_names[row].split("/")
    with zipfile.ZipFile(data_root / "omniglot" / "images_evaluation.zip") as archive:
        members = sorted(m for m in archive.namelist() if f"/{alphabet}/{character}/" in m and m.endswith(".png"))
        assert len(members) == 20
        for i, member in enumerate(members):
            image = Image.open(io.BytesIO(archive.read(member)))
            expected = data.images[row, i].float().div(255).numpy()
            assert np.array_equal(preprocess(image, spec), expected), member


def test_grayscale_rgba_cmyk_and_16_bit_images_are_converted_as_in_training(flowers_artifact, data_root, tmp_path):
    classifier = FewShotClassifier.load(flowers_artifact, backend="onnxruntime")
    path = load_labeled_split("flowers102", "test", data_root).paths[0]
    rgb = Image.open(path).convert("RGB")
    gray = rgb.convert("L")
    variants = {
        "rgb.png": (rgb, rgb),
        "cmyk.tif": (rgb.convert("CMYK"), rgb.convert("CMYK").convert("RGB")),
        "rgba.png": (rgb.convert("RGBA"), rgb),  # opaque alpha: the same pixels
        "gray16.png": (Image.fromarray(np.asarray(gray, np.uint16) * 257), gray.convert("RGB")),
        "gray.png": (gray, gray.convert("RGB")),
    }
    for name, (stored, as_training_saw_it) in variants.items():
        stored.save(tmp_path / name)
        reference = classifier.embed([as_training_saw_it])
        assert np.abs(classifier.embed([tmp_path / name]) - reference).max() < 1e-5, name
    half_transparent = rgb.convert("RGBA")
    half_transparent.putalpha(128)
    on_black = Image.alpha_composite(Image.new("RGBA", rgb.size, (0, 0, 0, 255)), half_transparent).convert("RGB")
    assert np.abs(classifier.embed([half_transparent]) - classifier.embed([on_black])).max() < 1e-5


# ---------------------------------------------------------------- enrolment and classification
def test_enrolled_omniglot_classes_are_recognised(omniglot_artifact, data_root):
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    classes = omniglot_class_images(data_root, classes=5)
    for label, images in classes:
        classifier.enroll(label, images[:5])
    assert classifier.labels == [label for label, _ in classes]
    queries = [img for _, images in classes for img in images[5:]]
    truth = [label for label, images in classes for _ in images[5:]]
    predictions = classifier.classify(queries, top_k=3)
    accuracy = np.mean([p.label == t for p, t in zip(predictions, truth)])
    assert accuracy >= 0.95
    p = predictions[0]
    assert len(p.labels) == 3 and p.posteriors == tuple(sorted(p.posteriors, reverse=True)) and p.posterior <= 1


def test_shots_beyond_k_become_k_representatives_by_kmeans(flowers_artifact, data_root):
    classifier = FewShotClassifier.load(flowers_artifact, backend="onnxruntime")
    assert classifier.labels == ["001", "002", "003", "004"]  # the trained gallery is pre-loaded
    paths = load_labeled_split("flowers102", "test", data_root).paths[:5]
    classifier.enroll("five shots", paths)
    classifier.enroll("two shots", paths[:2])
    g = classifier.gallery
    five, two = g.labels.index("five shots"), g.labels.index("two shots")
    # 1280-d: repmet_flowers_lite0_cpu's residual head keeps the features' size
    assert g.representatives.shape[1:] == (3, 1280) and g.counts[five] == 3 and g.counts[two] == 2
    embeddings = classifier.embed(paths)
    # each k-means centre is the mean of the embeddings closest to it
    centres = g.representatives[five]
    nearest = ((embeddings[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    for c in range(3):
        np.testing.assert_allclose(centres[c], embeddings[nearest == c].mean(0), atol=1e-5)
    np.testing.assert_array_equal(g.representatives[two, 2], g.representatives[two, 1])  # padding repeats
    assert sorted(map(tuple, g.representatives[two, :2].round(5))) == sorted(map(tuple, embeddings[:2].round(5)))


def test_backends_agree_on_predictions(omniglot_artifact, data_root):
    classes = omniglot_class_images(data_root, classes=4)
    results = []
    for backend in ("torch", "torchscript", "onnxruntime"):
        classifier = FewShotClassifier.load(omniglot_artifact, backend=backend)
        for label, images in classes:
            classifier.enroll(label, images[:1])
        results.append(classifier.classify([img for _, images in classes for img in images[1:]], top_k=4))
    for other in results[1:]:
        assert [p.labels for p in other] == [p.labels for p in results[0]]
        np.testing.assert_allclose([p.posteriors for p in other], [p.posteriors for p in results[0]], atol=1e-4)


def test_concurrent_classify_calls_give_the_serial_answers(omniglot_artifact, data_root):
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    classes = omniglot_class_images(data_root, classes=5)
    for label, images in classes:
        classifier.enroll(label, images[:1])
    batches = [[images[1 + (i % 19)] for _, images in classes] for i in range(24)]
    serial = [classifier.classify(batch, top_k=2) for batch in batches]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda b: classifier.classify(b, top_k=2), batches))
    assert parallel == serial


def test_gallery_save_and_load_round_trip(omniglot_artifact, data_root, tmp_path):
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    classes = omniglot_class_images(data_root, classes=3)
    for label, images in classes:
        classifier.enroll(label, images[:5])
    queries = [images[7] for _, images in classes]
    before = classifier.classify(queries, top_k=3)
    npz = classifier.save_gallery(tmp_path / "mine.npz")
    assert npz == tmp_path / "mine.npz" and sorted(tmp_path.iterdir()) == [npz]  # one file, no sidecar
    with np.load(npz, allow_pickle=False) as arrays:
        assert list(arrays["labels"]) == [label for label, _ in classes]
    fresh = FewShotClassifier.load(omniglot_artifact, backend="torchscript")
    fresh.load_gallery(tmp_path / "mine.npz")
    assert fresh.labels == classifier.labels and fresh.classify(queries, top_k=3)[0].labels == before[0].labels
    np.testing.assert_array_equal(fresh.gallery.representatives, classifier.gallery.representatives)
    with np.load(npz, allow_pickle=False) as arrays:  # readable without pickle
        assert arrays["representatives"].shape == (3, 1, 64)


# ---------------------------------------------------------------- bad input
def test_bad_input_is_a_clear_error_and_changes_nothing(omniglot_artifact, data_root, tmp_path, monkeypatch):
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    with pytest.raises(UserError, match="the gallery is empty"):
        classifier.classify([np.zeros((28, 28), np.uint8)])
    (label, images), = omniglot_class_images(data_root, classes=1)
    classifier.enroll(label, images[:2])
    before = state_of(classifier)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(UserError, match=f"cannot decode image {broken}"):
        classifier.enroll("new", [images[3], broken])
    with pytest.raises(UserError, match="from zero images"):
        classifier.enroll("new", [])
    with pytest.raises(UserError, match="'missing' is not enrolled"):
        classifier.remove("missing")
    with pytest.raises(UserError, match="arrays must be uint8"):
        classifier.enroll("new", [np.zeros((28, 28), np.float32)])
    with pytest.raises(UserError, match="non-empty string"):
        classifier.enroll("", images[:1])
    monkeypatch.setattr("repmet.imaging.MAX_PIXELS", 100 * 100)
    big = tmp_path / "big.png"
    Image.new("L", (200, 200)).save(big)
    with pytest.raises(UserError, match=f"image {big} is 200x200, more than 10000 pixels"):
        classifier.enroll("new", [big])
    assert_unchanged(classifier, before)
    with pytest.raises(UserError, match="top_k must be a whole number of at least 1"):
        classifier.classify(images[:1], top_k=0)


def test_a_tampered_incomplete_or_foreign_artifact_is_refused(omniglot_artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(omniglot_artifact, copy)
    data = bytearray((copy / "head.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "head.onnx").write_bytes(bytes(data))
    with pytest.raises(UserError, match="head.onnx does not match its sha256"):
        FewShotClassifier.load(copy)
    (copy / "head.onnx").unlink()
    with pytest.raises(UserError, match="incomplete: head.onnx is missing"):
        FewShotClassifier.load(copy)
    shutil.copy(omniglot_artifact / "head.onnx", copy / "head.onnx")
    meta = json.loads((copy / "metadata.json").read_text())
    (copy / "metadata.json").write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(UserError, match="schema version 99, this repmet reads version 1"):
        FewShotClassifier.load(copy)
    with pytest.raises(UserError, match="metadata.json is missing"):
        FewShotClassifier.load(tmp_path)
    with pytest.raises(UserError, match="has no tensorrt graphs .*metric-export --format trt"):
        FewShotClassifier.load(omniglot_artifact, backend="tensorrt", device="cuda")


def test_a_gallery_from_another_model_or_tampered_is_refused(omniglot_artifact, flowers_artifact, tmp_path):
    flowers = FewShotClassifier.load(flowers_artifact, backend="onnxruntime")
    flowers.save_gallery(tmp_path / "flowers.npz")
    omniglot = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    with pytest.raises(UserError, match="made with another model|saved from another model"):
        omniglot.load_gallery(tmp_path / "flowers.npz")
    np.savez(tmp_path / "flowers.npz", representatives=np.zeros((4, 3, 256), np.float32), counts=np.ones(4))
    with pytest.raises(UserError, match="saved by an older repmet"):
        flowers.load_gallery(tmp_path / "flowers.npz")
    data = bytearray((tmp_path / "flowers.npz").read_bytes())
    (tmp_path / "flowers.npz").write_bytes(b"not a zip" + bytes(data))
    with pytest.raises(UserError, match="not an .npz file"):
        flowers.load_gallery(tmp_path / "flowers.npz")
    assert omniglot.labels == [] and flowers.labels == ["001", "002", "003", "004"]


# ---------------------------------------------------------------- no torch, and the command line
def test_the_onnxruntime_backend_runs_with_torch_blocked(omniglot_artifact):
    from conftest import BLOCK_TORCH

    code = BLOCK_TORCH + textwrap.dedent(f"""
        import numpy as np
        from repmet.runtime import FewShotClassifier
        c = FewShotClassifier.load({str(omniglot_artifact)!r}, backend="auto")
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, 255, (28, 28), dtype=np.uint8), rng.integers(0, 255, (28, 28), dtype=np.uint8)
        c.enroll("a", [a]); c.enroll("b", [b])
        print(c.backend.name, [p.label for p in c.classify([a, b])], "torch" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["onnxruntime", "['a',", "'b']", "False"]


def test_metric_predict_enrolls_a_support_folder_and_classifies(omniglot_artifact, data_root, tmp_path):
    classes = omniglot_class_images(data_root, classes=3)
    for label, images in classes:
        folder = tmp_path / "support" / label.replace("/", "_")
        folder.mkdir(parents=True)
        for i in range(5):
            Image.fromarray(images[i]).save(folder / f"{i}.png")
        Image.fromarray(images[10]).save(tmp_path / f"query_{label.replace('/', '_')}.png")
    queries = sorted(str(p) for p in tmp_path.glob("query_*.png"))
    run = [script("metric-predict"), str(omniglot_artifact), "--support", str(tmp_path / "support")]
    for q in queries:
        run += ["--query", q]
    result = subprocess.run([*run, "--json", "--top-k", "2"], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["backend"] == "onnxruntime"
    assert [r["labels"][0] for r in out["predictions"]] == [q.split("query_")[1][:-4] for q in queries]
    table = subprocess.run([*run, "--save-gallery", str(tmp_path / "g.npz")], capture_output=True, text=True,
                           cwd=PROJECT_ROOT)
    assert table.returncode == 0 and len(table.stdout.strip().splitlines()) == 1 + len(queries)
    saved = subprocess.run([script("metric-predict"), str(omniglot_artifact), "--gallery", str(tmp_path / "g.npz"),
                            "--query", queries[0], "--json"], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["predictions"][0]["labels"] == out["predictions"][0]["labels"][:1]
    empty = subprocess.run([script("metric-predict"), str(omniglot_artifact), "--query", queries[0]],
                           capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert empty.returncode == 2 and "has no trained gallery" in empty.stderr and "--support FOLDER" in empty.stderr
    missing = subprocess.run([*run[:3], str(tmp_path / "nope"), "--query", queries[0]], capture_output=True, text=True)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr and "Traceback" not in missing.stderr
