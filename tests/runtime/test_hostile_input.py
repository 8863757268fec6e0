"""Hostile and unusual input on the Python side (issue 21): rotated photos, galleries saved where
they were asked and nowhere else, bombs refused before they cost memory, run folders and drawings
that never overwrite a user's files."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from artifact_fixtures import resized_artifact, without_input_shapes
from repmet.errors import UserError
from repmet.imaging import ORIENTATION_TAG, open_rgb

# Pillow's transpose that undoes each EXIF orientation (exif_transpose's table), and its inverse:
# the stored pixels of a photo whose viewer image is the original
TO_VIEWER = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
             5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}
TO_STORED = {**TO_VIEWER, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def stored_with_orientation(viewer: Image.Image, orientation: int, path, fmt: str = "PNG") -> None:
    """Write ``viewer``'s pixels as a camera would store them with EXIF ``orientation``."""
    stored = viewer.transpose(TO_STORED[orientation]) if orientation != 1 else viewer
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    stored.save(path, fmt, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_is_decoded_as_a_viewer_shows_it_for_every_exif_orientation(data_root, tmp_path, orientation):
    original = open_rgb(sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[0])
    original = original.crop((0, 0, original.width, original.height * 3 // 4))  # not square: a rotation shows
    png = tmp_path / "photo.png"
    stored_with_orientation(original, orientation, png)
    assert np.array_equal(np.asarray(open_rgb(png)), np.asarray(original))
    jpeg = tmp_path / "photo.jpg"  # JPEG re-encodes: the same picture within compression noise, the right way up
    stored_with_orientation(original, orientation, jpeg, "JPEG")
    decoded = np.asarray(open_rgb(jpeg), dtype=np.float32)
    assert decoded.shape == np.asarray(original).shape
    assert np.abs(decoded - np.asarray(original, dtype=np.float32)).mean() < 4.0


# ---------------------------------------------------------------- galleries
def enrolled_omniglot(artifact, data_root):
    from test_runtime_reliability import enrolled

    return enrolled(artifact, data_root)


@pytest.mark.parametrize("name", ["g.v2", "gallery", "g.NPZ"])
def test_a_gallery_is_saved_exactly_where_asked_or_refused(omniglot_artifact, data_root, tmp_path, name):
    classifier = enrolled_omniglot(omniglot_artifact, data_root)
    (tmp_path / "g.npz").write_bytes(b"the user's own file")
    with pytest.raises(UserError, match=r"does not end in \.npz"):
        classifier.save_gallery(tmp_path / name)
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(UserError, match=r"is a folder"):
        classifier.save_gallery(tmp_path / "folder.npz")
    assert (tmp_path / "g.npz").read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz", "g.npz"]  # nothing written beside them
    assert classifier.save_gallery(tmp_path / "exact.npz") == tmp_path / "exact.npz"


def zip_bomb(path, representatives_bytes: int, dim: int) -> None:
    """A gallery .npz whose representatives are ``representatives_bytes`` of deflated zeros (a few MB
    on disk), with a well-formed .npy header declaring them."""
    import zipfile

    classes = representatives_bytes // (4 * dim)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (classes, 1, dim)})
    small = {"format": np.array("repmet-gallery-2"), "fingerprint": np.array("0" * 64),
             "labels": np.array(["a"] * 3), "counts": np.ones(3, np.int64)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in small.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, value)
            archive.writestr(f"{key}.npy", buffer.getvalue())
        with archive.open("representatives.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            chunk = bytes(64 << 20)
            for _ in range(classes * 4 * dim // len(chunk)):
                member.write(chunk)


def test_a_gallery_zip_bomb_is_refused_from_its_headers_in_milliseconds(omniglot_artifact, tmp_path):
    import resource
    import time

    from repmet.runtime import FewShotClassifier
    from repmet.artifact.gallery_file import Gallery

    bomb = tmp_path / "bomb.npz"
    zip_bomb(bomb, 1 << 30, 64)
    assert bomb.stat().st_size < 8_000_000  # 1 GiB of zeros in a few MB
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"bomb.npz: representatives declares \(4194304, 1, 64\); the limits are"):
        classifier.load_gallery(bomb)
    with pytest.raises(UserError, match=r"representatives declares"):
        Gallery.load(bomb)
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # KiB: nothing inflated


def test_a_gallery_whose_zip_sizes_contradict_its_header_is_refused(omniglot_artifact, data_root, tmp_path):
    import zipfile

    saved = enrolled_omniglot(omniglot_artifact, data_root).save_gallery(tmp_path / "g.npz")
    with zipfile.ZipFile(saved) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members["counts.npy"] = members["counts.npy"] + bytes(4096)  # more bytes than its shape holds
    with zipfile.ZipFile(saved, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(UserError, match=r"g.npz is damaged: counts declares \d+ bytes but its header describes"):
        onnx_classifier(omniglot_artifact).load_gallery(saved)


def onnx_classifier(artifact):
    from repmet.runtime import FewShotClassifier

    return FewShotClassifier.load(artifact, backend="onnxruntime")


def test_temporary_files_of_killed_saves_are_removed_by_the_next_save(omniglot_artifact, data_root, tmp_path):
    import subprocess
    import sys

    classifier = enrolled_omniglot(omniglot_artifact, data_root)
    target = tmp_path / "g.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a process id that has exited
    orphan = tmp_path / f".g.npz.{dead}.x1y2.tmp"
    orphan.write_bytes(bytes(1000))
    alive = tmp_path / f".g.npz.{os.getppid()}.abcd.tmp"  # a save in progress in a running process
    alive.write_bytes(b"in progress")
    other = tmp_path / f".other.npz.{dead}.efgh.tmp"  # another file's: not this save's business
    other.write_bytes(b"x")
    classifier.save_gallery(target)
    assert not orphan.exists() and alive.exists() and other.exists() and target.is_file()


# ---------------------------------------------------------------- configs and run folders
def test_a_yaml_alias_bomb_is_refused_at_once_with_the_line(tmp_path):
    import time

    from repmet.methods.config_loading import load_config

    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    config = tmp_path / "bomb.yaml"
    config.write_text("name: bomb\nmethod: protonets\n" + "\n".join(laughs) + "\n")  # 10^10 strings if expanded
    assert config.stat().st_size < 1000
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"bomb.yaml is not valid YAML: line 4, column \d+: YAML aliases"):
        load_config(config)
    assert time.perf_counter() - start < 1.0


def test_a_huge_value_is_cut_short_in_the_message(tmp_path):
    from repmet.methods.config_loading import load_config

    config = tmp_path / "long.yaml"
    config.write_text("name: long\nmethod: protonets\nseed: [" + ", ".join(["123456789"] * 100_000) + "]\n")
    with pytest.raises(UserError) as raised:
        load_config(config)
    assert "key 'seed' must be int" in str(raised.value) and len(str(raised.value)) < 400


def test_a_folder_holding_a_users_files_is_never_taken_as_free(tmp_path):
    from repmet.train.run_folder import RunFolder

    out = tmp_path / "mine"
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.yaml").write_text("my own notes")
    (out / "checkpoints" / "best.pt").write_bytes(b"my own model")
    with pytest.raises(UserError, match=r"already holds checkpoints/, config.yaml, which a run writes; nothing was "
                                        r"changed"):
        RunFolder(out).claim(resume=False, overwrite=False)
    assert (out / "config.yaml").read_text() == "my own notes"
    assert (out / "checkpoints" / "best.pt").read_bytes() == b"my own model"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml"]  # no lock left either
    folder = RunFolder(tmp_path / "fresh")  # a folder the run creates and leaves unused is removed again
    folder.claim(resume=False, overwrite=False)
    folder.release()
    assert not (tmp_path / "fresh").exists()


def test_a_failed_download_leaves_no_folder_behind(tmp_path):
    from repmet.data.download import download_file

    destination = tmp_path / "nonexistent" / "omniglot" / "images_background.zip"
    with pytest.raises(UserError, match="could not download"):
        download_file("http://127.0.0.1:9/none.zip", destination, what="Omniglot", timeout=2)
    assert sorted(tmp_path.iterdir()) == []


def test_drawings_of_queries_with_the_same_name_never_overwrite_a_file(data_root, tmp_path):
    from repmet.runtime.cli_predict import save_new_png

    first, second = sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[:2]
    out = tmp_path / "drawn"
    out.mkdir()
    (out / "photo.png").write_bytes(b"the user's own file")
    written = [save_new_png(open_rgb(path), out, "photo") for path in (first, second)]  # two photo.jpg's
    assert [p.name for p in written] == ["photo_2.png", "photo_3.png"]
    assert (out / "photo.png").read_bytes() == b"the user's own file"
    assert np.array_equal(np.asarray(Image.open(written[1])), np.asarray(open_rgb(second)))


# ---------------------------------------------------------------- arguments
@pytest.mark.parametrize("top_k", ["2", 3.5, True, None, 0, -1])
def test_a_top_k_that_is_not_a_positive_whole_number_is_refused(omniglot_artifact, data_root, top_k):
    from test_runtime_reliability import omniglot_images

    classifier = enrolled_omniglot(omniglot_artifact, data_root)
    query = omniglot_images(data_root, classes=1, shots=5)[0][1][4]  # a uint8 array, as a user holds it
    with pytest.raises(UserError, match="top_k must be a whole number of at least 1, got"):
        classifier.classify([query], top_k=top_k)
    assert len(classifier.classify([query], top_k=np.int64(2))[0].labels) == 2


@pytest.mark.parametrize("threshold", [float("nan"), -1, 2, "0.5", None, True])
def test_a_score_threshold_that_is_not_a_probability_is_refused(threshold):
    from repmet.runtime.detector import check_score_threshold

    with pytest.raises(UserError, match="score_threshold must be a number from 0 to 1"):
        check_score_threshold(threshold)
    for fine in (0, 0.2, 1, np.float32(0.5)):
        check_score_threshold(fine)


# ---------------------------------------------------------------- boxes and support files
@pytest.mark.parametrize("boxes", [["1", "2", "30", "40"], [True, False, True, True], [1, 2, 30, 40, 5, 6, 70, 80],
                                   [[1, 2, 3]], "1,2,30,40", None, [[1, 2, 30, 40], [1, 2]]])
def test_boxes_that_are_not_numbers_in_fours_are_refused(boxes):
    from repmet.runtime.detector import _checked_boxes

    with pytest.raises(UserError, match=r"boxes must be \[x1, y1, x2, y2\] or \[\[x1, y1, x2, y2\], ...\] of numbers"):
        _checked_boxes(boxes, (100, 100), "photo.jpg")
    assert _checked_boxes([1, 2, 30, 40], (100, 100), "photo.jpg").shape == (1, 4)
    assert _checked_boxes(np.array([[1, 2, 30, 40], [5, 5, 9, 9]]), (100, 100), "photo.jpg").shape == (2, 4)


def test_more_boxes_than_the_limit_are_refused_before_any_is_embedded():
    from repmet.limits import MAX_BOXES_PER_ENROLL
    from repmet.runtime.detector import _checked_boxes

    many = np.tile([[1.0, 2.0, 30.0, 40.0]], (MAX_BOXES_PER_ENROLL + 1, 1))
    with pytest.raises(UserError, match=f"more than the limit of {MAX_BOXES_PER_ENROLL}"):
        _checked_boxes(many, (100, 100), "photo.jpg")


def coco_support(data_root, tmp_path, edit=None):
    """A real COCO support file: 2 fsod-mini images with their VOC boxes, images/ beside it."""
    import json
    import shutil

    from repmet.annotations import load_voc_detection

    split = load_voc_detection(data_root / "fsod-mini", "train")
    (tmp_path / "images").mkdir(exist_ok=True)
    data = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n}
                                                             for i, n in enumerate(split.class_names)]}
    for i, image in enumerate(split.images[:2]):
        shutil.copy(image.path, tmp_path / "images" / image.path.name)
        data["images"].append({"id": i + 1, "file_name": image.path.name, "width": image.width, "height": image.height})
        for box, label in zip(image.boxes, image.labels):
            x1, y1, x2, y2 = (float(v) for v in box)
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": i + 1,
                                        "category_id": int(label) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1]})
    if edit:
        edit(data)
    path = tmp_path / "support.json"
    path.write_text(json.dumps(data))
    return path


def test_a_coco_support_file_with_duplicate_ids_infinite_boxes_or_paths_out_of_its_folder_is_refused(data_root,
                                                                                                     tmp_path):
    from repmet.annotations import load_coco_detection

    def load(path):
        return load_coco_detection(path, tmp_path / "images")

    assert len(load(coco_support(data_root, tmp_path)).images) == 2
    cases = {
        "appears twice in 'images'": lambda d: d["images"].append(dict(d["images"][0])),
        "appears twice in 'categories'": lambda d: d["categories"].append(dict(d["categories"][0], name="other")),
        "is not finite": lambda d: d["annotations"][0].__setitem__("bbox", [1, 2, float("inf"), 3]),
        "points outside the image folder": lambda d: d["images"][0].__setitem__("file_name", "../support.json"),
        "must be an object": lambda d: d["annotations"].append([1, 2]),
    }
    for said, edit in cases.items():
        with pytest.raises(UserError, match=said):
            load(coco_support(data_root, tmp_path, edit))
    absolute = coco_support(data_root, tmp_path, lambda d: d["images"][0].__setitem__(
        "file_name", str(tmp_path / "images" / d["images"][0]["file_name"])))
    with pytest.raises(UserError, match="points outside the image folder"):
        load(absolute)
    (tmp_path / "images" / "link.jpg").symlink_to(sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[5])
    with pytest.raises(UserError, match="points outside the image folder"):
        load(coco_support(data_root, tmp_path, lambda d: d["images"][0].__setitem__("file_name", "link.jpg")))
    deep = tmp_path / "deep.json"
    deep.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UserError, match="nested more than 64 levels deep"):
        load(deep)


def test_a_voc_split_naming_a_path_out_of_the_folder_is_refused(data_root, tmp_path):
    import shutil

    from repmet.annotations import load_voc_detection

    root = tmp_path / "voc"
    shutil.copytree(data_root / "indoor85-voc", root)
    listing = root / "ImageSets" / "Main" / "test.txt"
    listing.write_text("../../secret\n" + listing.read_text())
    with pytest.raises(UserError, match="which is a path, not an image id"):
        load_voc_detection(root, "test")


def test_a_graph_refusing_its_inputs_is_a_sentence_naming_metadata(omniglot_artifact):
    from repmet.runtime import FewShotClassifier
    from repmet.runtime.graph_errors import graph_errors

    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    wrong = np.zeros((2, 3, 28, 28), np.float32)  # a colour batch for a grey model, as a contradicting metadata.json asks
    with pytest.raises(UserError, match=r"the onnxruntime graphs of .* refused images \[2, 3, 28, 28\] \(.*\); "
                                        r".*metadata.json \(preprocess, input\) does not describe"):
        with graph_errors(classifier.artifact.folder, classifier.backend.name, f"images {list(wrong.shape)}"):
            classifier.backend.embed(wrong)


def test_metadata_nested_too_deeply_is_a_sentence(tmp_path):
    from repmet.artifact.reader import read_json_object

    deep = tmp_path / "metadata.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nested more than 64 levels deep; export again"):
        read_json_object(deep, "export again")


def test_preparing_a_large_photo_never_holds_it_as_float32(data_root):
    """The detector's preprocessing reads only the rows its resize needs: a 4000 x 4000 photo (48 MB
    as uint8, 192 MB as float32) costs well under its float32 size, and gives the numbers of the naive
    arithmetic (normalise everything, then resize)."""
    import tracemalloc

    from repmet.runtime.detection_preprocess import _bilinear_axis, prepare_detection_image, resized_size

    def resize_bilinear(image, height, width):  # the whole float image at once: the naive reference
        top, bottom, wy = _bilinear_axis(image.shape[1], height)
        left, right, wx = _bilinear_axis(image.shape[2], width)
        rows = image[:, top, :] * (1 - wy)[None, :, None] + image[:, bottom, :] * wy[None, :, None]
        return rows[:, :, left] * (1 - wx)[None, None, :] + rows[:, :, right] * wx[None, None, :]

    photo = np.asarray(open_rgb(sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[0]))
    large = np.asarray(Image.fromarray(photo).resize((4000, 4000), Image.BILINEAR))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    tracemalloc.start()
    prepared = prepare_detection_image(large, 320, 512, mean, std)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 96 * 2**20, f"{peak / 2**20:.0f} MB"  # half of the float32 photo; measured 48 MB (rows and temporaries)

    small = large[::5, ::7]  # the naive arithmetic on a photo small enough for it
    naive = (small.astype(np.float32).transpose(2, 0, 1) / 255.0 - np.float32(mean)[:, None, None]) \
        / np.float32(std)[:, None, None]
    height, width = resized_size(*small.shape[:2], 320, 512)
    ours = prepare_detection_image(small, 320, 512, mean, std)
    assert np.abs(ours.tensor[0, :, :height, :width] - resize_bilinear(naive, height, width)).max() < 1e-5
    assert np.all(ours.tensor[0, :, height:, :] == 0) and np.all(ours.tensor[0, :, :, width:] == 0)
    assert prepared.tensor.shape == ours.tensor.shape


@pytest.mark.parametrize("backend", ["onnxruntime", "torchscript"])
def test_metadata_asking_for_the_largest_crop_is_a_sentence_not_a_crash(omniglot_artifact, data_root, tmp_path,
                                                                       backend):
    from repmet.runtime import FewShotClassifier

    artifact = resized_artifact(omniglot_artifact, tmp_path)
    classifier = FewShotClassifier.load(artifact, backend=backend)
    images = sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[:2]
    with pytest.raises(UserError, match=r"refused images \[1, 1, 4096, 4096\].*metadata.json \(preprocess, input\) "
                                        r"does not describe"):
        classifier.enroll("a", [images[0]])


@pytest.mark.parametrize("side", [14, 56])
def test_an_aoti_package_refuses_inputs_of_another_shape_than_it_was_compiled_for(omniglot_aoti_artifact, data_root,
                                                                                   tmp_path, side):
    """Compiled code handed a 14 x 14 image where it was compiled for 28 x 28 reads past its buffers
    (the process died: "double free or corruption"); the package's own record of its shapes stops it."""
    from repmet.runtime import FewShotClassifier

    classifier = FewShotClassifier.load(resized_artifact(omniglot_aoti_artifact, tmp_path, side), backend="aoti")
    image = sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[0]
    with pytest.raises(UserError, match=rf"refused images \[1, 1, {side}, {side}\] .*input 0 must be "
                                        rf"\[1\.\.\d+, 1, 28, 28\], got \[1, 1, {side}, {side}\].*metadata.json"):
        classifier.enroll("a", [image])


def test_an_aoti_package_without_its_input_shapes_is_refused_when_loaded(omniglot_aoti_artifact, tmp_path):
    from repmet.runtime import FewShotClassifier

    older = without_input_shapes(omniglot_aoti_artifact, tmp_path)
    with pytest.raises(UserError, match=r"embedding.pt2 does not record the input shapes it was compiled for .*"
                                        r"export the artifact again with metric-export --format aoti"):
        FewShotClassifier.load(older, backend="aoti")
