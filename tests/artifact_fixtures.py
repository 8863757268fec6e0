"""Artifacts and inputs that tests of several folders build from real data: Omniglot test
classes as a user holds them, and artifact copies edited as anyone could edit them (metadata asking
for huge inputs; an AOTInductor package without the record of its input shapes)."""

import json
import shutil

from repmet.data import load_few_shot_split


def omniglot_class_images(data_root, classes=6):
    """uint8 images as a user holds them (dark strokes on white, 28 px), per test class."""
    data = load_few_shot_split("omniglot", "test", data_root)
    return [(data.class_names[c], [255 - data.images[c, i, 0].numpy() for i in range(20)]) for c in range(classes)]


def resized_artifact(artifact, where, side: int = 4096):
    """A copy of ``artifact`` whose metadata asks for side x side inputs everywhere (consistent
    with itself, fingerprint recomputed as anyone can), while its graphs take 28 x 28."""
    from repmet.artifact.fingerprint import fingerprint_of

    copy = where / f"crop_{side}"
    shutil.copytree(artifact, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["preprocess"].update(crop=side, resize_to=side)
    metadata["input"].update(height=side, width=side)
    metadata["embedding"]["fingerprint"] = fingerprint_of(metadata, {n: e["sha256"] for n, e in metadata["files"].items()})
    (copy / "metadata.json").write_text(json.dumps(metadata))
    return copy


def without_input_shapes(artifact, where):
    """A copy of ``artifact`` whose embedding package was compiled as an older repmet did, without the
    record of its input shapes (a small real network, compiled here in 15 s; sha256 and
    fingerprint updated to match, as anyone can)."""
    import hashlib
    import json
    import shutil

    import torch
    from torch._inductor import aoti_compile_and_package

    from repmet.artifact.fingerprint import fingerprint_of

    copy = where / "older_aoti"
    shutil.copytree(artifact, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    package = copy / metadata["graphs"]["aoti"]["embedding"]
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(network, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    package.unlink()
    aoti_compile_and_package(program, package_path=str(package))
    metadata["files"][package.name].update(sha256=hashlib.sha256(package.read_bytes()).hexdigest(),
                                           bytes=package.stat().st_size)
    metadata["embedding"]["fingerprint"] = fingerprint_of(metadata, {n: e["sha256"] for n, e in metadata["files"].items()})
    (copy / "metadata.json").write_text(json.dumps(metadata))
    return copy
