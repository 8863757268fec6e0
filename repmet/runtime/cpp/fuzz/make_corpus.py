"""Rebuild the fuzz targets' seed corpus (fuzz/corpus/<target>/) from real files.

    python repmet/runtime/cpp/fuzz/make_corpus.py [DATA_ROOT]   # default /work/shared/data

gallery: a gallery.npz the Python runtime saved after enrolling 5 Omniglot characters (and one of
2 characters, compressed with np.savez_compressed, for the deflate path); metadata: the
metadata.json of the shipped Omniglot checkpoint exported to TorchScript; coco: COCO JSON of a
few fsod-mini boxes (converted from their VOC XML); image: small real JPEGs/PNGs (< 50 KB each).
Regression inputs (regression-*) that the fuzzers found are kept; everything else is rewritten.
"""
import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT))


def fresh(target: str) -> Path:
    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if not old.name.startswith("regression-"):
            old.unlink()
    return folder


def omniglot_pngs(data: Path, count: int) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(data / "omniglot" / "images_evaluation.zip") as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".png"))
        characters = sorted({str(Path(n).parent) for n in names})[::131][:count]
        return [(c, archive.read(next(n for n in names if str(Path(n).parent) == c))) for c in characters]


def main(data: Path) -> None:
    from repmet.export.artifact_writer import export_artifact
    from repmet.runtime.classifier import FewShotClassifier

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        artifact = tmp / "protonets_1_5"
        export_artifact(str(ROOT / "checkpoints" / "omniglot" / "protonets_1_5.pt"), artifact, ["torchscript"],
                        data_root=str(data), log=lambda _: None)
        metadata = fresh("metadata")
        shutil.copyfile(artifact / "metadata.json", metadata / "metadata.json")

        gallery = fresh("gallery")
        classifier = FewShotClassifier.load(artifact, backend="torchscript")
        drawings = omniglot_pngs(data, 5)
        for index, (character, png) in enumerate(drawings):
            (tmp / f"{index}.png").write_bytes(png)
            classifier.enroll(Path(character).name, [tmp / f"{index}.png"])
        saved = classifier.save_gallery(tmp / "omniglot5.npz")
        shutil.copyfile(saved, gallery / "omniglot5.npz")
        with np.load(saved) as arrays:  # the same members deflated, and a 2-class cut
            members = {k: arrays[k] for k in arrays.files}
        np.savez_compressed(gallery / "omniglot5_deflated.npz", **members)
        cut = dict(members, labels=members["labels"][:2], representatives=members["representatives"][:2],
                   counts=members["counts"][:2])
        np.savez(gallery / "omniglot2.npz", **cut)

        image = fresh("image")
        for index, (_, png) in enumerate(drawings[:2]):
            (image / f"omniglot{index}.png").write_bytes(png)

    # real small JPEGs: fsod-mini and Flowers, the smallest few; COCO JSON of fsod-mini boxes
    import xml.etree.ElementTree as ET

    fsod = data / "fsod-mini"
    jpegs = sorted((p for p in (fsod / "JPEGImages").glob("*.jpg")), key=lambda p: p.stat().st_size)
    for path in [p for p in jpegs if p.stat().st_size < 50_000][:3]:
        shutil.copyfile(path, image / path.name)
    # EXIF Orientation (no small real file here has one): a real JPEG and PNG saved again with it
    from PIL import Image

    with Image.open(jpegs[0]) as photo:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotated 90 degrees
        small = photo.convert("RGB").resize((photo.width // 2, photo.height // 2))
        small.save(image / "exif_orientation6.jpg", quality=75, exif=exif)
        exif[0x0112] = 3
        small.resize((small.width // 2, small.height // 2)).save(image / "exif_orientation3.png", exif=exif)
    coco = fresh("coco")
    images, annotations, categories = [], [], {}
    xmls = sorted((fsod / "Annotations").glob("*.xml"))
    for xml in xmls[::max(1, len(xmls) // 4)][:4]:
        root = ET.parse(xml).getroot()
        size = root.find("size")
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": root.findtext("filename") or xml.stem + ".jpg",
                       "width": int(size.findtext("width")), "height": int(size.findtext("height"))})
        for obj in list(root.iter("object"))[:3]:  # a few boxes each
            name = obj.findtext("name")
            category = categories.setdefault(name, len(categories) + 1)
            b = obj.find("bndbox")
            x1, y1, x2, y2 = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                "iscrowd": 0})
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": i, "name": n} for n, i in categories.items()]}
    (coco / "fsod_mini4.json").write_text(json.dumps(document, indent=1))
    one = {"images": images[:1], "annotations": [a for a in annotations if a["image_id"] == 1],
           "categories": document["categories"]}
    (coco / "fsod_mini1.json").write_text(json.dumps(one))
    # the image names fuzz_coco.cpp creates (empty) in images/ beside the fuzzed file
    (HERE / "coco_image_names.inc").write_text("".join(json.dumps(i["file_name"]) + ",\n" for i in images))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"))
