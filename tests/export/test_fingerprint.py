"""The embedding fingerprint (issue 21): computed by the runtime from the artifact's graph files
and preprocessing, identically in Python and C++, never trusted from metadata.json. A gallery
made with one model is refused by another even when every shape fits and metadata.json was
edited to match the swapped graphs."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT
from repmet.errors import UserError
from repmet.runtime import Artifact, FewShotClassifier, Gallery
from repmet.runtime.cli_predict import support_classes
from repmet.artifact.fingerprint import canonical_text, fingerprint_of
from cpp_tool import run_tool

EDITED = "metadata.json's embedding.fingerprint does not match the artifact's files (edited?); export the artifact again"
ANOTHER_MODEL = "was made with another model"


# ---------------------------------------------------------------- helpers
def naive_canonical_text(folder: Path) -> str:
    """The rule written out again, as simply as possible, from the files on disk."""
    meta = json.loads((folder / "metadata.json").read_text())
    out = "repmet-fingerprint-2\n"
    for name in sorted(meta["files"]):
        if name != meta["gallery"]:
            out += f"file {name} {hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n"

    def walk(path, value):
        nonlocal out
        if isinstance(value, dict):
            for key in sorted(value):
                walk(path + "." + key, value[key])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(path + "." + str(i), item)
        elif isinstance(value, bool):
            out += f"{path}={str(value).lower()}\n"
        elif isinstance(value, int):
            out += f"{path}={value}\n"
        elif isinstance(value, float):
            out += f"{path}=" + "%.17g" % value + "\n"
        else:
            out += f"{path}={value}\n"

    walk("embedding.dim", meta["embedding"]["dim"])
    walk("embedding.normalized", meta["embedding"]["normalized"])
    walk("head.distance", meta["head"]["distance"])
    walk("input", meta["input"])
    walk("preprocess", meta["preprocess"])
    return out


def resealed(folder: Path) -> str:
    """Write into metadata.json the fingerprint of what the folder holds now (what someone who
    edits an artifact can always do); returns it."""
    meta = json.loads((folder / "metadata.json").read_text())
    for name, entry in meta["files"].items():
        data = (folder / name).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    meta["embedding"]["fingerprint"] = fingerprint_of(meta, {n: e["sha256"] for n, e in meta["files"].items()})
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2))
    return meta["embedding"]["fingerprint"]


def swapped(artifact: Path, other: Path, where: Path, names=("embedding.onnx", "embedding.ts")) -> Path:
    """A copy of ``artifact`` whose embedding graphs are ``other``'s, with their sha256 and size
    updated in metadata.json (and nothing else): the reproduction of issue 21."""
    shutil.copytree(artifact, where)
    meta = json.loads((where / "metadata.json").read_text())
    for name in names:
        shutil.copyfile(other / name, where / name)
        data = (where / name).read_bytes()
        meta["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (where / "metadata.json").write_text(json.dumps(meta, indent=2))
    return where


def enrolled_gallery(artifact: Path, support: Path, path: Path, backend: str = "onnxruntime") -> Path:
    classifier = FewShotClassifier.load(artifact, backend=backend)
    for label, images in support_classes(support).items():
        classifier.enroll(label, images)
    return classifier.save_gallery(path)


def assert_refused(run, phrase: str) -> None:
    assert run.returncode in (1, 2), (run.returncode, run.stderr[-2000:])
    assert phrase in run.stderr and "terminate called" not in run.stderr, run.stderr[-2000:]
    assert run.stdout == ""


@pytest.fixture(scope="module")
def omniglot_5shot_artifact(data_root, tmp_path_factory) -> Path:
    """The shipped 5-way 5-shot Omniglot conv4: the same architecture as omniglot_artifact
    (protonets_1_5), other weights."""
    from repmet.export.artifact_writer import export_artifact

    out = tmp_path_factory.mktemp("artifacts") / "protonets_5_5"
    export_artifact(str(PROJECT_ROOT / "checkpoints" / "omniglot" / "protonets_5_5.pt"), out, ["torchscript", "onnx"],
                    data_root=str(data_root), log=lambda _: None)
    return out


# ---------------------------------------------------------------- the rule
def test_the_canonical_text_of_real_artifacts_is_the_rule(omniglot_artifact, flowers_artifact):
    for folder in (omniglot_artifact, flowers_artifact):
        artifact = Artifact.open(folder)
        meta = artifact.metadata
        text = canonical_text(meta, {name: entry["sha256"] for name, entry in meta["files"].items()})
        assert text == naive_canonical_text(folder)
        assert artifact.fingerprint == hashlib.sha256(text.encode()).hexdigest() == meta["embedding"]["fingerprint"]
        lines = text.splitlines()
        assert lines[0] == "repmet-fingerprint-2" and text.endswith("\n")
        files = [line.split()[1] for line in lines if line.startswith("file ")]
        assert files == sorted(set(meta["files"]) - {meta["gallery"]}) and "model.pt" in files
        assert {"embedding.onnx", "embedding.ts", "head.onnx", "head.ts"} <= set(files)  # every format's graphs
        assert "embedding.dim=%d" % meta["embedding"]["dim"] in lines and "head.distance=sqeuclidean" in lines
        assert not any(line.startswith(("embedding.fingerprint", "head.sigma", "gallery")) for line in lines)
    meta = Artifact.open(flowers_artifact).metadata
    flowers = canonical_text(meta, {n: e["sha256"] for n, e in meta["files"].items()})
    std = meta["preprocess"]["std"][0]
    assert isinstance(std, float) and f"preprocess.std.0={std:.17g}\n" in flowers and len(f"{std:.17g}") == 19
    assert "embedding.normalized=true\n" in flowers
    assert "gallery.npz" not in flowers  # the gallery carries the fingerprint, it is not part of it
    gallery = Artifact.open(flowers_artifact).file("gallery.npz")
    assert Gallery.load(gallery).fingerprint == Artifact.open(flowers_artifact).fingerprint


def test_the_detector_fingerprint_covers_its_graphs_and_preprocessing(detector_artifact):
    artifact = Artifact.open(detector_artifact)
    meta = artifact.metadata
    text = canonical_text(meta, {name: entry["sha256"] for name, entry in meta["files"].items()})
    assert text == naive_canonical_text(detector_artifact)
    for name in ("detection.onnx", "box_embedding.onnx"):
        assert name in meta["files"] and f"file {name} " in text
    assert "preprocess.min_size=" in text and "input.height=" in text and "\ndetection." not in text
    assert Gallery.load(artifact.file(meta["gallery"])).fingerprint == artifact.fingerprint == \
        meta["embedding"]["fingerprint"]


def test_values_that_would_read_ambiguously_are_refused(omniglot_artifact, tmp_path):
    for edit, said in [(lambda m: m["input"].update(name="images\nfile x"), "input.name = "),
                       (lambda m: m["input"].update({"a.b": 1}), "input.a.b = 1"),
                       (lambda m: m["input"].update({"a=b": 1}), "input.a=b = 1")]:
        meta = json.loads((omniglot_artifact / "metadata.json").read_text())
        edit(meta)
        with pytest.raises(UserError, match="is invalid"):
            fingerprint_of(meta, {n: e["sha256"] for n, e in meta["files"].items()})
        copy = tmp_path / str(len(list(tmp_path.iterdir())))
        shutil.copytree(omniglot_artifact, copy)
        (copy / "metadata.json").write_text(json.dumps(meta))
        with pytest.raises(UserError, match=f"{copy}/metadata.json: " + said.replace(".", r"\.")):
            Artifact.open(copy)


# ---------------------------------------------------------------- issue 21, reproduced
def test_swapped_graphs_with_updated_sha256_are_refused_python_and_cpp(omniglot_artifact, omniglot_5shot_artifact,
                                                                       predict_tool, omniglot_images, tmp_path):
    support, queries = omniglot_images
    tampered = swapped(omniglot_artifact, omniglot_5shot_artifact, tmp_path / "tampered")
    with pytest.raises(UserError, match="^" + re.escape(f"artifact {tampered}: {EDITED}")):
        Artifact.open(tampered)
    assert_refused(run_tool(predict_tool, tampered, "--support", support, "--query", queries[0]),
                   f"artifact {tampered}: {EDITED}")


def test_a_gallery_is_refused_by_swapped_graphs_even_with_a_resealed_metadata(
        omniglot_artifact, omniglot_5shot_artifact, predict_tool, omniglot_images, tmp_path):
    """Who swaps the graphs can also write the matching fingerprint into metadata.json: the
    artifact then opens, but no gallery of the original model does."""
    support, queries = omniglot_images
    saved = enrolled_gallery(omniglot_artifact, support, tmp_path / "original.npz")
    original = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    original.load_gallery(saved)
    tampered = swapped(omniglot_artifact, omniglot_5shot_artifact, tmp_path / "tampered")
    new = resealed(tampered)
    assert new != Artifact.open(omniglot_artifact).fingerprint and Artifact.open(tampered).fingerprint == new
    # the swap matters: the other model's embeddings of the same images differ
    other = FewShotClassifier.load(tampered, backend="onnxruntime")
    first = sorted((support / "c0").iterdir())
    assert np.abs(other.embed(first) - original.embed(first)).max() > 0.1
    for backend in ("onnxruntime", "torchscript"):
        with pytest.raises(UserError, match=f"gallery {saved} {ANOTHER_MODEL}: its embedding fingerprint is "
                                            f"{Artifact.open(omniglot_artifact).fingerprint}, .* has {new}"):
            FewShotClassifier.load(tampered, backend=backend).load_gallery(saved)
    assert_refused(run_tool(predict_tool, tampered, "--gallery", saved, "--query", queries[0]), ANOTHER_MODEL)
    # and the original model still takes it, in C++ too
    run = run_tool(predict_tool, omniglot_artifact, "--gallery", saved, "--query", queries[0])
    assert run.returncode == 0, run.stderr


def test_an_edited_fingerprint_in_metadata_is_refused_python_and_cpp(omniglot_artifact, predict_tool,
                                                                     omniglot_images, tmp_path):
    support, queries = omniglot_images
    copy = tmp_path / "edited"
    shutil.copytree(omniglot_artifact, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["embedding"]["fingerprint"] = hashlib.sha256(b"another model").hexdigest()
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"metadata\.json's embedding\.fingerprint does not match"):
        Artifact.open(copy)
    assert_refused(run_tool(predict_tool, copy, "--support", support, "--query", queries[0]), EDITED)


def test_preprocessing_is_part_of_the_fingerprint(omniglot_artifact, omniglot_images, tmp_path):
    support, _ = omniglot_images
    saved = enrolled_gallery(omniglot_artifact, support, tmp_path / "g.npz")
    copy = tmp_path / "inverted"
    shutil.copytree(omniglot_artifact, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["preprocess"]["invert"] = False
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="does not match the artifact's files"):
        Artifact.open(copy)
    assert resealed(copy) != Artifact.open(omniglot_artifact).fingerprint
    with pytest.raises(UserError, match=ANOTHER_MODEL):
        FewShotClassifier.load(copy, backend="onnxruntime").load_gallery(saved)


# ---------------------------------------------------------------- Python and C++ agree
@pytest.mark.parametrize("edit", [
    lambda m: None,
    lambda m: m["preprocess"].update(mean=[0.1], std=[0.30000000000000004]),
    lambda m: m["preprocess"].update(mean=[-0.0], std=[1.0000000000000002]),
    lambda m: m["input"].update({"Z": [1, 2.5, {"b": None, "a": True}], "a": "\u00e9t\u00e9 \U0001f600", "10": 1e22,
                                 "9": -7, "\u00e9": 9007199254740993, "big": 1.7976931348623157e308}),
], ids=["as-exported", "floats", "negative-zero", "nested-unicode-and-order"])
def test_python_and_cpp_compute_the_same_fingerprint(omniglot_artifact, predict_tool, omniglot_images, tmp_path, edit):
    """C++ opens the artifact only when its fingerprint equals the one Python wrote into
    metadata.json, and saves that fingerprint into its galleries, which Python then loads."""
    support, queries = omniglot_images
    copy = tmp_path / "artifact"
    shutil.copytree(omniglot_artifact, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    edit(meta)
    (copy / "metadata.json").write_text(json.dumps(meta))
    python = resealed(copy)
    saved = tmp_path / "from_cpp.npz"
    run = run_tool(predict_tool, copy, "--support", support, "--save-gallery", saved, "--query", queries[0])
    assert run.returncode == 0, run.stderr[-2000:]
    assert Gallery.load(saved).fingerprint == python == Artifact.open(copy).fingerprint
    classifier = FewShotClassifier.load(copy, backend="torchscript")
    classifier.load_gallery(saved)
    assert classifier.labels == sorted(support_classes(support))


def test_a_gallery_enrolled_with_one_format_loads_with_another(omniglot_artifact, omniglot_images, tmp_path):
    support, _ = omniglot_images
    saved = enrolled_gallery(omniglot_artifact, support, tmp_path / "onnx.npz", backend="onnxruntime")
    classifier = FewShotClassifier.load(omniglot_artifact, backend="torchscript")
    classifier.load_gallery(saved)
    assert classifier.labels == sorted(support_classes(support))
