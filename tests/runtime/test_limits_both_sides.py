"""Every limit of ``repmet/limits.json`` refused by both runtimes, with the same words.

One input just over each limit is handed to the Python runtime and to the C++ tool; both must refuse
it with a sentence holding the same phrase (the number of the table among it). A limit added to the
table without a case here fails ``test_every_limit_has_a_case``."""

from __future__ import annotations

import json
import shutil
import struct
import typing
import zlib
from pathlib import Path

import pytest
from PIL import Image

from repmet.errors import UserError
from repmet.limits import table
from cpp_tool import assert_refused, run_tool
from zip_files import npy_header, npz_members, stored, write_zip

LIMITS = table()


def edited_metadata(artifact: Path, where: Path, edit, text=None) -> Path:
    """A copy of ``artifact`` with its metadata.json edited (``text``: how to write it out)."""
    copy = where / "edited"
    shutil.copytree(artifact, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    edit(metadata)
    (copy / "metadata.json").write_text(text(metadata) if text else json.dumps(metadata))
    return copy


def huge_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height grey pixels (its data is a few bytes: it is
    refused from the header, before anything is decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def gallery_declaring(real: Path, shape: tuple, where: Path) -> Path:
    """The real gallery with its representatives' header declaring ``shape`` (only the header is
    stored, deflated; the zip declares the size that the shape needs)."""
    header = npy_header("<f4", shape)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(header) + deflate.flush()
    size = len(header) + 4 * shape[0] * shape[1] * shape[2]
    members = [stored(n, d) for n, d in npz_members(real).items() if n != "representatives.npy"]
    return write_zip(where / "declaring.npz", members + [("representatives.npy", packed, 8, zlib.crc32(header), size)])


class Case(typing.NamedTuple):
    in_python: typing.Callable[[], object]  # must raise a UserError
    cpp_args: list  # for repmet-predict, after the artifact
    phrase: str  # what both say
    artifact: Path | None = None  # the C++ tool's artifact (default: the Omniglot one)


# Each case builds one input just over its limit from the session's real artifacts and images.
def case_max_pixels(ctx):
    side = LIMITS["max_pixels"] // 9473 + 1  # 9473 x 9447: just over the limit
    big = huge_png(ctx.tmp / "big.png", 9473, side)
    return Case(lambda: ctx.classifier().enroll("big", [big]), ["--support", ctx.support_with(big), "--query", ctx.query],
                f"is 9473x{side}, more than {LIMITS['max_pixels']} pixels")


def case_max_side(ctx):
    limit = LIMITS["max_side"]
    return ctx.metadata_case(lambda m: m["preprocess"].update(crop=limit + 1),
                             f"preprocess.crop = {limit + 1} is invalid (it must be an integer from 1 to {limit})")


def case_max_classes(ctx):
    return ctx.gallery_case((LIMITS["max_classes"] + 1, 1, 64),
                            f"representatives declares ({LIMITS['max_classes'] + 1}, 1, 64); the limits are "
                            f"{LIMITS['max_classes']} classes")


def case_max_reps_per_class(ctx):
    reps = LIMITS["max_reps_per_class"] + 1
    return ctx.gallery_case((5, reps, 64), f"representatives declares (5, {reps}, 64); the limits are "
                                           f"{LIMITS['max_classes']} classes, {LIMITS['max_reps_per_class']} "
                                           f"representatives per class")


def case_max_embedding_dim(ctx):
    limit = LIMITS["max_embedding_dim"]
    return ctx.metadata_case(lambda m: m["embedding"].update(dim=limit + 1),
                             f"embedding.dim = {limit + 1} is invalid (it must be an integer from 1 to {limit})")


def case_max_label_chars(ctx):
    limit = LIMITS["max_label_chars"]
    label = "x" * (limit + 1)
    return Case(lambda: ctx.classifier().enroll(label, [ctx.query]),
                ["--support", ctx.support_with(ctx.query, label), "--query", ctx.query],
                f"a label may have at most {limit} characters, got {limit + 1}")


def case_max_boxes_per_enroll(ctx):
    from repmet.runtime import FewShotDetector

    limit = LIMITS["max_boxes_per_enroll"]
    photo = ctx.photo
    width, height = Image.open(photo).size
    boxes = [[i % 50, i // 50, i % 50 + 40, i // 50 + 40] for i in range(limit + 1)]
    coco = {"images": [{"id": 1, "file_name": photo.name, "width": width, "height": height}],
            "annotations": [{"id": i, "image_id": 1, "category_id": 1, "bbox": [b[0], b[1], 40, 40]}
                            for i, b in enumerate(boxes)],
            "categories": [{"id": 1, "name": "many"}]}
    (ctx.tmp / "coco" / "images").mkdir(parents=True)
    shutil.copy(photo, ctx.tmp / "coco" / "images")
    (ctx.tmp / "coco" / "support.json").write_text(json.dumps(coco))
    return Case(lambda: FewShotDetector.load(ctx.detector, backend="onnxruntime").enroll("many", [(photo, boxes)]),
                ["--detect", "--support", ctx.tmp / "coco" / "support.json", "--query", photo],
                f"{limit + 1} boxes, more than the limit of {limit} in one enroll", ctx.detector)


def case_max_files(ctx):
    limit = LIMITS["max_files"]

    def many_files(metadata):
        for i in range(limit + 1 - len(metadata["files"])):
            metadata["files"][f"extra_{i}.bin"] = {"sha256": "0" * 64, "bytes": 1}

    return ctx.metadata_case(many_files, f"is invalid ({limit + 1} entries, more than the limit of {limit})")


def case_max_json_bytes(ctx):
    limit = LIMITS["max_json_bytes"]

    def padded(metadata):
        text = json.dumps(metadata)
        return text[:-1] + " " * (limit + 1 - len(text)) + "}"

    return ctx.metadata_case(lambda m: None, f"metadata.json is {limit + 1} bytes, more than the limit of {limit} "
                                             f"for a JSON file", text=padded)


def nested(depth: int) -> list:
    """Lists nested so that, as a value of the top-level object (depth 0), the innermost is at ``depth``."""
    return json.loads("[" * depth + "]" * depth)


def case_max_json_depth(ctx):
    limit = LIMITS["max_json_depth"]
    return ctx.metadata_case(lambda m: m.update(extra=nested(limit + 1)),
                             f"metadata.json is nested more than {limit} levels deep")


def case_max_gallery_bytes(ctx):
    limit = LIMITS["max_gallery_bytes"]
    classes = limit // (4 * 64 * LIMITS["max_reps_per_class"]) + 1  # every dimension within its own limit
    return ctx.gallery_case((classes, LIMITS["max_reps_per_class"], 64), f"more than the limit of {limit}")


CASES = {name[len("case_"):]: case for name, case in globals().items() if name.startswith("case_")}


def test_every_limit_has_a_case():
    assert set(CASES) == set(LIMITS)


class Context:
    """What the cases are built from: real artifacts, images and a saved gallery."""

    def __init__(self, artifact, detector, gallery, images, photo, tmp):
        self.artifact, self.detector, self.gallery, self.photo, self.tmp = artifact, detector, gallery, photo, tmp
        self.support, queries = images
        self.query = queries[0]

    def classifier(self, artifact=None):
        from repmet.runtime import FewShotClassifier

        return FewShotClassifier.load(artifact or self.artifact, backend="onnxruntime")

    def metadata_case(self, edit, phrase: str, text=None) -> Case:
        """Opening the Omniglot artifact with its metadata edited: Python loads it, C++ serves from it."""
        artifact = edited_metadata(self.artifact, self.tmp, edit, text)
        return Case(lambda: self.classifier(artifact), ["--support", self.support, "--query", self.query], phrase,
                    artifact)

    def gallery_case(self, shape: tuple, phrase: str) -> Case:
        """Loading the real gallery with its representatives declaring ``shape``."""
        gallery = gallery_declaring(self.gallery, shape, self.tmp)
        return Case(lambda: self.classifier().load_gallery(gallery), ["--gallery", gallery, "--query", self.query],
                    phrase)

    def support_with(self, image: Path, label: str = "big") -> Path:
        """The real support folder plus a class ``label`` holding ``image``."""
        folder = self.tmp / "support"
        shutil.copytree(self.support, folder)
        (folder / label).mkdir()
        shutil.copy(image, folder / label / Path(image).name)
        return folder


@pytest.mark.parametrize("limit", sorted(LIMITS))
def test_a_limit_is_refused_by_both_runtimes_in_the_same_words(limit, predict_tool, omniglot_artifact, detector_artifact,
                                                                real_gallery, omniglot_images, data_root, tmp_path):
    photo = sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[0]
    ctx = Context(omniglot_artifact, detector_artifact, real_gallery, omniglot_images, photo, tmp_path)
    case = CASES[limit](ctx)
    with pytest.raises(UserError) as refused:
        case.in_python()
    assert case.phrase in str(refused.value), (case.phrase, str(refused.value))
    assert_refused(run_tool(predict_tool, case.artifact or omniglot_artifact, *case.cpp_args), case.phrase)


def test_json_nested_exactly_to_the_limit_is_read_by_both_runtimes(predict_tool, omniglot_artifact, omniglot_images,
                                                                   tmp_path):
    """The boundary: both runtimes count depth alike (the top-level value at 0)."""
    artifact = edited_metadata(omniglot_artifact, tmp_path, lambda m: m.update(extra=nested(LIMITS["max_json_depth"])))
    from repmet.artifact.reader import read_json_object

    assert read_json_object(artifact / "metadata.json", "")["extra"]
    support, queries = omniglot_images
    run = run_tool(predict_tool, artifact, "--support", support, "--query", queries[0])
    assert "nested" not in run.stderr, run.stderr[-2000:]
