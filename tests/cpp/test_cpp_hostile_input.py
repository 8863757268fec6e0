"""The C++ runtime on hostile input (issue 21): every bad file, made from a real one, is refused
with a sentence that names the file and says what is wrong (exit 1 or 2), never an abort (134),
a segfault or an answer; a gallery zip bomb is refused in milliseconds, before anything is
inflated; a JPEG's EXIF orientation is applied as Pillow's ImageOps.exif_transpose applies it."""

import json
import shutil
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from cpp_tool import BUILD, assert_refused, run_tool, write_ambulance_coco
from zip_files import npy_header, npz_members, stored, write_zip

FSOD = "fsod-mini"


def measured(tool: Path, *args) -> tuple[subprocess.CompletedProcess, float, int]:
    """The run, its wall seconds and its peak resident memory in bytes (a fresh Python as the
    parent, so that the peak is this child's alone)."""
    wrapper = ("import resource, subprocess, sys, time\n"
               "start = time.perf_counter()\n"
               "run = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
               "sys.stdout.write(f'{time.perf_counter() - start} {peak} {run.returncode}\\n')\n"
               "sys.stderr.write(run.stdout + '\\x00' + run.stderr)\n")
    outer = subprocess.run([sys.executable, "-c", wrapper, str(tool), *map(str, args)], capture_output=True, text=True,
                           timeout=600)
    seconds, peak, code = outer.stdout.split()
    stdout, stderr = outer.stderr.split("\x00", 1)
    return subprocess.CompletedProcess([tool, *args], int(code), stdout, stderr), float(seconds), int(peak)


# ---------------------------------------------------------------- real files to spoil
@pytest.fixture(scope="module")
def fsod_jpeg(data_root) -> Path:
    """A real photo of fsod-mini (416 x 416 JPEG, no EXIF)."""
    return sorted((data_root / FSOD / "JPEGImages").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def coco_support(data_root, tmp_path_factory) -> Path:
    """A real COCO support file: two fsod-mini Ambulance photos and their boxes (as in test_cpp_runtime)."""
    return write_ambulance_coco(data_root, tmp_path_factory.mktemp("coco"))[0]




# ---------------------------------------------------------------- command-line options
@pytest.mark.parametrize("args, message", [
    (("--top-k", "abc"), "--top-k must be a positive integer, got 'abc'"),
    (("--top-k", "0"), "--top-k must be a positive integer, got '0'"),
    (("--top-k", "99999999999"), "--top-k must be a positive integer"),
    (("--detect", "--score", "nan"), "--score must be a number from 0 to 1, got 'nan'"),
    (("--detect", "--score", "-1"), "--score must be a number from 0 to 1, got '-1'"),
    (("--detect", "--score", "2"), "--score must be a number from 0 to 1, got '2'"),
    (("--detect", "--score", "high"), "--score must be a number from 0 to 1, got 'high'"),
])
def test_bad_options_are_refused_with_a_sentence(predict_tool, tmp_path, args, message):
    run = run_tool(predict_tool, tmp_path, *args, "--query", tmp_path / "q.jpg")
    assert run.returncode == 2 and run.stderr.startswith(f"error: {message}"), run.stderr


# ---------------------------------------------------------------- COCO support files
def spoil_missing_width(coco):
    del coco["images"][0]["width"]
    return "images[0] lacks 'width'"


def spoil_missing_category_id(coco):
    del coco["categories"][0]["id"]
    return "categories[0] lacks 'id'"


def spoil_string_id(coco):
    coco["categories"][0]["id"] = "7"
    return "categories[0] has 'id' = \"7\", not an integer"


def spoil_string_width(coco):
    coco["images"][1]["width"] = "640"
    return "images[1] has 'width' = \"640\", not a finite number"


def spoil_string_bbox(coco):
    coco["annotations"][0]["bbox"] = "10 20 30 40"
    return "annotations[0] has 'bbox' = \"10 20 30 40\", not [x, y, width, height]"


def spoil_huge_bbox(coco):
    coco["annotations"][0]["bbox"][2] = 1e308
    return "annotations[0] has 'bbox' = 1e+308, not a finite number"


def spoil_unknown_category(coco):
    coco["annotations"][-1]["category_id"] = 99
    return f"annotations[{len(coco['annotations']) - 1}] has 'category_id' = 99, which no category has"


def spoil_string_image_id(coco):
    coco["annotations"][0]["image_id"] = "0"
    return "annotations[0] has 'image_id' = \"0\", not an integer"


def spoil_deep_nesting(coco):
    coco["info"] = "DEEP"  # replaced by 5000 nested lists in the text (Python's json would recurse)
    return "nested more than 64 levels deep"


@pytest.mark.parametrize("spoil", [spoil_missing_width, spoil_missing_category_id, spoil_string_id, spoil_string_width,
                                   spoil_string_bbox, spoil_huge_bbox, spoil_unknown_category, spoil_string_image_id,
                                   spoil_deep_nesting])
def test_a_spoiled_coco_support_file_is_refused_with_a_sentence(predict_tool, detector_artifact, coco_support,
                                                                fsod_jpeg, spoil):
    coco = json.loads(coco_support.read_text())
    expected = spoil(coco)
    spoiled = coco_support.with_name(f"{spoil.__name__}.json")
    spoiled.write_text(json.dumps(coco).replace('"DEEP"', "[" * 5000 + "]" * 5000))
    run = run_tool(predict_tool, detector_artifact, "--detect", "--support", spoiled, "--query", fsod_jpeg)
    assert_refused(run, str(spoiled), expected, "fix the file")


@pytest.mark.parametrize("escape", ["parent", "absolute", "link"])
def test_a_coco_file_name_outside_the_image_folder_is_refused(predict_tool, detector_artifact, coco_support,
                                                             data_root, fsod_jpeg, escape):
    """As metric-predict: no '..', no absolute name, no link out of images/ (the same sentence)."""
    coco = json.loads(coco_support.read_text())
    images = coco_support.parent / "images"
    if escape == "parent":
        coco["images"][0]["file_name"] = "../support.json"
    elif escape == "absolute":
        coco["images"][0]["file_name"] = str(images / coco["images"][0]["file_name"])
    else:
        link = images / "link_out.jpg"
        if not link.is_symlink():
            link.symlink_to(sorted((data_root / FSOD / "JPEGImages").glob("*.jpg"))[5])
        coco["images"][0]["file_name"] = link.name
    spoiled = coco_support.with_name(f"escape_{escape}.json")
    spoiled.write_text(json.dumps(coco))
    run = run_tool(predict_tool, detector_artifact, "--detect", "--support", spoiled, "--query", fsod_jpeg)
    assert_refused(run, str(spoiled), f"file_name '{coco['images'][0]['file_name']}'",
                   "points outside the image folder")


# ---------------------------------------------------------------- galleries
def spoiled_header(members: dict[str, bytes], name: str, old: bytes, new: bytes) -> dict[str, bytes]:
    assert len(old) == len(new) and old in members[name][:128]
    return {**members, name: members[name].replace(old, new, 1)}


@pytest.mark.parametrize("member, old, new, message", [
    ("representatives.npy", b"'<f4'", b"'<fX'", "representatives): its .npy header has the dtype '<fX'"),
    ("labels.npy", b"'<U2'", b"'<Ux'", "labels): its .npy header has the dtype '<Ux'"),
    ("representatives.npy", b"(5, 1, 64)", b"(5, 1, X4)", "representatives): its .npy header has a 'shape' with 'X4'"),
    ("counts.npy", b"(5,)", b"(?,)", "counts): its .npy header has a 'shape' with '?'"),
    ("representatives.npy", b"'shape'", b"'shope'", "representatives): its .npy header lacks 'shape'"),
])
def test_a_gallery_with_a_spoiled_npy_header_is_refused(predict_tool, omniglot_artifact, real_gallery,
                                                       omniglot_images, tmp_path, member, old, new, message):
    members = spoiled_header(npz_members(real_gallery), member, old, new)
    spoiled = write_zip(tmp_path / "spoiled.npz", [stored(name, data) for name, data in members.items()])
    run = run_tool(predict_tool, omniglot_artifact, "--gallery", spoiled, "--query", omniglot_images[1][0])
    assert_refused(run, f"gallery {spoiled}", message, "save a new gallery")


def test_a_gallery_claiming_a_terabyte_in_a_zip64_field_is_refused(predict_tool, omniglot_artifact, real_gallery,
                                                                  omniglot_images, tmp_path):
    members = npz_members(real_gallery)
    reps = members.pop("representatives.npy")
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packed.compress(reps) + packed.flush()
    entries = [stored(name, data) for name, data in members.items()]
    entries.append(("representatives.npy", packed, 8, zlib.crc32(reps), 1 << 40))
    bomb = write_zip(tmp_path / "terabyte.npz", entries)
    run = run_tool(predict_tool, omniglot_artifact, "--gallery", bomb, "--query", omniglot_images[1][0])
    assert_refused(run, f"gallery {bomb} (representatives) declares 1099511627776 bytes, more than the limit")


@pytest.fixture(scope="module")
def zip_bomb(real_gallery, tmp_path_factory) -> Path:
    """The real gallery with its representatives replaced by 2 GiB of zeros, deflated to 2 MB: a
    [32, 1024, 16384] float32 array, within the limits table but not this model's [C, 1, 64]."""
    header = npy_header("<f4", (32, 1024, 16384))
    size = 32 * 1024 * 16384 * 4
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts, crc, zeros = [deflate.compress(header)], zlib.crc32(header), bytes(1 << 24)
    for _ in range(size // len(zeros)):
        parts.append(deflate.compress(zeros))
        crc = zlib.crc32(zeros, crc)
    parts.append(deflate.flush())
    members = npz_members(real_gallery)
    del members["representatives.npy"]
    entries = [stored(name, data) for name, data in members.items()]
    entries.append(("representatives.npy", b"".join(parts), 8, crc, len(header) + size))
    return write_zip(tmp_path_factory.mktemp("bomb") / "bomb.npz", entries)


def test_a_gallery_zip_bomb_is_refused_in_milliseconds(predict_tool, omniglot_artifact, real_gallery, zip_bomb,
                                                       omniglot_images, tmp_path):
    assert zip_bomb.stat().st_size < 4 << 20
    query = omniglot_images[1][0]
    # the baseline: the same tool refusing a gallery that is missing (process start, artifact check)
    baseline, base_seconds, base_peak = measured(predict_tool, omniglot_artifact, "--gallery", tmp_path / "none.npz",
                                                 "--query", query)
    assert_refused(baseline, "is missing")
    run, seconds, peak = measured(predict_tool, omniglot_artifact, "--gallery", zip_bomb, "--query", query)
    assert_refused(run, f"gallery {zip_bomb}", "holds 1024 x 16384-d representatives per class; this model needs 1 x 64-d")
    assert seconds < base_seconds + 0.5, (seconds, base_seconds)  # inflating it alone takes seconds
    assert peak < base_peak + (64 << 20), (peak, base_peak)  # nothing of the 2 GiB is allocated


def test_a_gallery_declaring_more_classes_than_the_limits_is_refused(predict_tool, omniglot_artifact, real_gallery,
                                                                    omniglot_images, tmp_path):
    members = npz_members(real_gallery)
    header = npy_header("<f4", (8_388_608, 1, 64))  # 2 GiB of this model's representatives
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(header) + deflate.flush()  # only the header: nothing past it may be read
    bomb = write_zip(tmp_path / "classes.npz", [stored(n, d) for n, d in members.items() if n != "representatives.npy"]
                     + [("representatives.npy", packed, 8, zlib.crc32(header), len(header) + (2 << 30))])
    run, seconds, _ = measured(predict_tool, omniglot_artifact, "--gallery", bomb, "--query", omniglot_images[1][0])
    assert_refused(run, f"gallery {bomb}: representatives declares (8388608, 1, 64); the limits are 100000 classes")


@pytest.mark.parametrize("name", ["folder", "g.v2", "gallery"])
def test_save_gallery_writes_exactly_the_path_given(predict_tool, omniglot_artifact, omniglot_images, tmp_path, name):
    support, queries = omniglot_images
    (tmp_path / "folder").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    run = run_tool(predict_tool, omniglot_artifact, "--support", support, "--save-gallery", tmp_path / name, "--query",
                   queries[0])
    assert_refused(run, str(tmp_path / name), "is a folder" if name == "folder" else "does not end in .npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not any((tmp_path / "folder").iterdir())
    run = run_tool(predict_tool, omniglot_artifact, "--support", support, "--save-gallery", tmp_path / "g.npz",
                   "--query", queries[0])
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + ["g.npz"])


# ---------------------------------------------------------------- metadata.json against the graphs
def spoiled_artifact(artifact: Path, where: Path, edit) -> Path:
    copy = where / "artifact"
    shutil.copytree(artifact, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    edit(metadata)
    (copy / "metadata.json").write_text(json.dumps(metadata))
    return copy


def colour_on_a_grey_model(metadata):
    from repmet.artifact.fingerprint import fingerprint_of

    metadata["preprocess"].update(color="RGB", mean=[0.0] * 3, std=[1.0] * 3)
    metadata["input"]["channels"] = 3
    # with the fingerprint of what it now says (as anyone can compute it), so the graph is reached
    metadata["embedding"]["fingerprint"] = fingerprint_of(metadata, {n: e["sha256"] for n, e in metadata["files"].items()})


def test_preprocessing_that_contradicts_the_graph_is_a_sentence_naming_metadata(predict_tool, omniglot_artifact,
                                                                               omniglot_images, tmp_path):
    artifact = spoiled_artifact(omniglot_artifact, tmp_path, colour_on_a_grey_model)
    support, queries = omniglot_images
    run = run_tool(predict_tool, artifact, "--support", support, "--query", queries[0])
    assert_refused(run, f"the embedding graph of {artifact} refused its inputs [",
                   f"{artifact}/metadata.json (preprocess, input) does not describe what the graph takes")


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["preprocess"].update(crop=4096), "preprocess.crop = 4096 is invalid (preprocessing makes crop x crop "
                                                  "images, input.height is 28)"),
    (lambda m: m["preprocess"].update(crop=8192), "preprocess.crop = 8192 is invalid (it must be an integer from 1 to 4096)"),
    (lambda m: m["preprocess"].update(resize_to="28"), "preprocess.resize_to = \"28\" is invalid"),
    (lambda m: m.update(extra=json.loads("{\"a\":" * 200 + "1" + "}" * 200)), "is nested more than 64 levels deep"),
])
def test_metadata_asking_for_too_much_is_refused_before_the_graphs_run(predict_tool, omniglot_artifact,
                                                                      omniglot_images, tmp_path, edit, message):
    artifact = spoiled_artifact(omniglot_artifact, tmp_path, edit)
    support, queries = omniglot_images
    run = run_tool(predict_tool, artifact, "--support", support, "--query", queries[0])
    assert_refused(run, f"{artifact}/metadata.json", message)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["preprocess"].update(min_size="800"), "preprocess.min_size = \"800\" is invalid"),
    (lambda m: m["preprocess"].pop("max_size"), "preprocess.max_size is missing"),
    (lambda m: m["preprocess"].update(std=[0.2, 0.2]), "preprocess.std = [0.2,0.2] is invalid"),
])
def test_a_spoiled_detector_metadata_is_refused_with_a_sentence(predict_tool, detector_artifact, coco_support,
                                                               fsod_jpeg, tmp_path, edit, message):
    artifact = spoiled_artifact(detector_artifact, tmp_path, edit)
    run = run_tool(predict_tool, artifact, "--detect", "--support", coco_support, "--query", fsod_jpeg)
    assert_refused(run, f"{artifact}/metadata.json", message)


# ---------------------------------------------------------------- truncated images
@pytest.fixture(scope="module")
def truncated(fsod_jpeg, omniglot_images, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("truncated")
    jpeg, png = root / "cut.jpg", root / "cut.png"
    jpeg.write_bytes(fsod_jpeg.read_bytes()[: fsod_jpeg.stat().st_size // 2])
    real_png = omniglot_images[1][0]
    png.write_bytes(real_png.read_bytes()[: real_png.stat().st_size * 2 // 3])
    for path in (jpeg, png):  # as Pillow refuses them
        with pytest.raises(OSError, match="image file is truncated"):
            Image.open(path).load()
    return {"jpeg": jpeg, "png": png}


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_a_truncated_image_is_refused_when_decoded(predict_tool, truncated, tmp_path, kind):
    run = subprocess.run([str(BUILD / "repmet-decode"), str(truncated[kind]), "RGB", str(tmp_path / "out.ppm")],
                         capture_output=True, text=True, timeout=60)
    assert_refused(run, f"cannot decode image {truncated[kind]}: the file is truncated")


def test_a_truncated_jpeg_is_refused_as_query_and_as_support(predict_tool, omniglot_artifact, omniglot_images,
                                                             detector_artifact, coco_support, truncated, tmp_path):
    support, queries = omniglot_images
    run = run_tool(predict_tool, omniglot_artifact, "--support", support, "--query", truncated["jpeg"])
    assert_refused(run, f"cannot decode image {truncated['jpeg']}: the file is truncated")
    bad_support = tmp_path / "support"
    shutil.copytree(support, bad_support)
    shutil.copy(truncated["jpeg"], bad_support / "c0" / "cut.jpg")
    run = run_tool(predict_tool, omniglot_artifact, "--support", bad_support, "--query", queries[0])
    assert_refused(run, f"cannot decode image {bad_support / 'c0' / 'cut.jpg'}: the file is truncated")
    # a detector's support image
    coco = json.loads(coco_support.read_text())
    shutil.copytree(coco_support.parent / "images", tmp_path / "images")
    name = coco["images"][0]["file_name"]
    whole = (coco_support.parent / "images" / name).read_bytes()
    (tmp_path / "images" / name).write_bytes(whole[: len(whole) // 2])
    (tmp_path / "support.json").write_text(json.dumps(coco))
    run = run_tool(predict_tool, detector_artifact, "--detect", "--support", tmp_path / "support.json", "--query",
                   queries[0])
    assert_refused(run, f"cannot decode image {tmp_path / 'images' / name}: the file is truncated")


# ---------------------------------------------------------------- EXIF orientation
# the transposition that stores an upright image under each Orientation (its inverse is what a viewer applies)
STORED = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


@pytest.fixture(scope="module")
def upright(fsod_jpeg) -> Image.Image:
    """A real photo cropped to 400 x 300, so that a wrong turn changes its size."""
    return Image.open(fsod_jpeg).convert("RGB").crop((0, 0, 400, 300))


def oriented_copy(upright: Image.Image, orientation: int, path: Path) -> Path:
    """``upright`` stored so that a viewer, applying EXIF ``orientation``, shows it upright."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    (upright if orientation == 1 else upright.transpose(STORED[orientation])).save(path, quality=95, exif=exif.tobytes())
    return path


def decoded(path: Path, mode: str, out: Path) -> np.ndarray:
    run = subprocess.run([str(BUILD / "repmet-decode"), str(path), mode, str(out)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return np.asarray(Image.open(out))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_exif_orientation_gives_the_pixels_a_viewer_shows(predict_tool, upright, tmp_path, orientation, mode):
    jpeg = oriented_copy(upright, orientation, tmp_path / f"o{orientation}.jpg")
    ours = decoded(jpeg, mode, tmp_path / "out.pnm")
    pillow = np.asarray(ImageOps.exif_transpose(Image.open(jpeg)).convert(mode))
    assert ours.shape == pillow.shape == np.asarray(upright.convert(mode)).shape
    assert np.array_equal(ours, pillow)  # the same libjpeg decode, turned the same way
    # and that is the upright photo, up to JPEG's loss
    assert np.abs(ours.astype(int) - np.asarray(upright.convert(mode))).mean() < 3


def test_a_malformed_exif_block_is_ignored(predict_tool, upright, tmp_path):
    jpeg = oriented_copy(upright, 6, tmp_path / "o6.jpg")
    data = jpeg.read_bytes()
    tiff = data.index(b"Exif\0\0") + 6
    cases = {"ifd_past_the_end": data[:tiff + 4] + b"\xff\xff\xff\x7f" + data[tiff + 8:],
             "entries_past_the_end": data[:tiff + 8] + b"\xff\xff" + data[tiff + 10:],
             "not_tiff": data[:tiff] + b"XX" + data[tiff + 2:]}
    for name, spoiled in cases.items():
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(spoiled)
        ours = decoded(path, "RGB", tmp_path / "out.ppm")
        with warnings.catch_warnings():  # Pillow warns "Corrupt EXIF data"
            warnings.simplefilter("ignore")
            pillow = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        # what Pillow makes of it: the entries that can be read (the first is the orientation), else none
        assert np.array_equal(ours, pillow), name
    assert decoded(tmp_path / "not_tiff.jpg", "RGB", tmp_path / "out.ppm").shape == (400, 300, 3)  # as stored


def test_detection_boxes_are_in_the_viewers_pixels(predict_tool, detector_artifact, data_root, tmp_path):
    """A photo stored turned (Orientation 6, as a phone writes it): boxes given in the
    viewer's pixels enroll what the viewer shows, and detections on it equal those on the
    upright pixels (a PNG of what Pillow shows), in the viewer's pixels."""
    from repmet.data.detection import load_voc_detection

    train = load_voc_detection(data_root / FSOD, "train")
    ambulance = train.class_names.index("Ambulance")
    example = next(im for im in train.images if set(im.labels.tolist()) == {ambulance})
    photo = Image.open(example.path).convert("RGB")
    boxes = example.boxes.tolist()
    (tmp_path / "images").mkdir()
    oriented_copy(photo, 6, tmp_path / "images" / "turned.jpg")
    upright_png = tmp_path / "images" / "upright.png"
    ImageOps.exif_transpose(Image.open(tmp_path / "images" / "turned.jpg")).save(upright_png)
    outputs = {}
    for name in ("turned.jpg", "upright.png"):
        coco = {"images": [{"id": 0, "file_name": name, "width": photo.width, "height": photo.height}],
                "annotations": [{"id": i, "image_id": 0, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
                                for i, b in enumerate(boxes)],
                "categories": [{"id": 1, "name": "Ambulance"}]}
        (tmp_path / f"{name}.json").write_text(json.dumps(coco))
        run = run_tool(predict_tool, detector_artifact, "--detect", "--support", tmp_path / f"{name}.json", "--score",
                       0.05, "--json", "--format", "torchscript", "--query", tmp_path / "images" / name)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs[name] = json.loads(run.stdout)["predictions"][0]["detections"]
    turned, reference = outputs["turned.jpg"], outputs["upright.png"]
    assert len(turned) == len(reference) > 0
    for a, b in zip(turned, reference):
        assert a["label"] == b["label"] and abs(a["score"] - b["score"]) <= 1e-4
        assert np.abs(np.array(a["box"]) - np.array(b["box"])).max() <= 0.05
        assert a["box"][2] <= photo.width + 0.5 and a["box"][3] <= photo.height + 0.5  # the viewer's frame


# ---------------------------------------------------------------- labels: one rule with Python
BAD_LABELS = {"newline": "cat\nforged line", "nul": "a\x00b", "tab": "a\tb", "c1": "a\x85b", "separator": "a\u2028b",
              "spaces": "\u3000 ", "long": "x" * 201}


@pytest.mark.parametrize("kind", sorted(BAD_LABELS))
def test_a_label_breaking_the_rule_is_refused_by_both_runtimes(predict_tool, omniglot_artifact, omniglot_images,
                                                                tmp_path, kind):
    from repmet.errors import UserError
    from repmet.runtime import FewShotClassifier
    from repmet.artifact.labels import label_problem

    label = BAD_LABELS[kind]
    support, queries = omniglot_images
    assert label_problem(label) is not None
    python = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    with pytest.raises(UserError):
        python.enroll(label, [queries[0]])
    if "\x00" not in label and "/" not in label:  # a folder name can hold the rest
        folders = tmp_path / "support"
        shutil.copytree(support, folders)
        first = sorted(folders.iterdir())[0]
        first.rename(folders / label)
        assert_refused(run_tool(predict_tool, omniglot_artifact, "--support", folders, "--query", queries[0]),
                       "label")
    # a gallery holding the label, written by hand, is refused when C++ reads it
    good = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    good.enroll("fine", [queries[0]])
    saved = good.save_gallery(tmp_path / "g.npz")
    with np.load(saved, allow_pickle=False) as arrays:
        stored = {key: arrays[key] for key in arrays.files}
    stored["labels"] = np.array([label])
    np.savez(saved, **stored)
    assert_refused(run_tool(predict_tool, omniglot_artifact, "--gallery", saved, "--query", queries[0]), "label")
    with pytest.raises(UserError, match="label"):
        FewShotClassifier.load(omniglot_artifact, backend="onnxruntime").load_gallery(saved)


def test_labels_in_any_script_are_welcome(predict_tool, omniglot_artifact, omniglot_images, tmp_path):
    support, queries = omniglot_images
    folders = tmp_path / "support"
    shutil.copytree(support, folders)
    names = ["猫 cat", "Ünïcödé", "emoji 🐟", "with spaces and-dashes"]
    for folder, name in zip(sorted(folders.iterdir()), names):
        folder.rename(folders / name)
    run = run_tool(predict_tool, omniglot_artifact, "--support", folders, "--json", "--top-k", 5, "--query",
                   queries[0])
    assert run.returncode == 0, run.stderr
    assert set(names) <= set(json.loads(run.stdout)["predictions"][0]["labels"])


# ---------------------------------------------------------------- graphs handed another shape
@pytest.mark.parametrize("fmt, side, said", [
    ("aoti", 14, "the package takes input 0 as [1..64, 1, 28, 28]"),  # compiled code would read past its buffers
    ("aoti", 56, "the package takes input 0 as [1..64, 1, 28, 28]"),
    ("torchscript", 4096, "this graph takes images [N, 1, 28, 28], got [1, 1, 4096, 4096]"),  # 30 s and 8.8 GB before
])
def test_a_graph_handed_another_shape_than_it_was_made_for_refuses_it(predict_tool, omniglot_aoti_artifact,
                                                                      omniglot_images, tmp_path, fmt, side, said):
    from artifact_fixtures import resized_artifact

    artifact = resized_artifact(omniglot_aoti_artifact, tmp_path, side)
    support, queries = omniglot_images
    run = run_tool(predict_tool, artifact, "--support", support, "--query", queries[0], "--format", fmt)
    assert_refused(run, f"graph of {artifact} refused its inputs [", said, f"{artifact}/metadata.json (preprocess, input)")


def test_an_aoti_package_without_its_input_shapes_is_refused(predict_tool, omniglot_aoti_artifact, omniglot_images,
                                                             tmp_path):
    from artifact_fixtures import without_input_shapes

    older = without_input_shapes(omniglot_aoti_artifact, tmp_path)
    support, queries = omniglot_images
    run = run_tool(predict_tool, older, "--support", support, "--query", queries[0], "--format", "aoti")
    assert_refused(run, f"{older}/embedding.pt2 does not record the input shapes it was compiled for",
                   "export the artifact again with metric-export --format aoti")
