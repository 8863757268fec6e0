"""Real-data fixtures that tests of several folders build: a COCO file converted naively from a
VOC folder, a small fsod-mini subset with the tiny detector settings that train on it in seconds."""

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from repmet.data.detection import load_voc_detection


def voc_to_coco(root: Path, split: str) -> dict:
    """A naive VOC -> COCO conversion written here, independently of the loaders."""
    names = sorted({o.findtext("name") for xml in (root / "Annotations").glob("*.xml")
                    for o in ET.parse(xml).getroot().iter("object")})
    coco = {"images": [], "annotations": [],
            "categories": [{"id": 100 + i, "name": n} for i, n in enumerate(reversed(names))]}
    ids = {c["name"]: c["id"] for c in coco["categories"]}
    for number, image_id in enumerate((root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()):
        xml = ET.parse(root / "Annotations" / f"{image_id}.xml").getroot()
        size = xml.find("size")
        coco["images"].append({"id": number, "file_name": f"{image_id}.jpg", "width": int(size.findtext("width")),
                               "height": int(size.findtext("height"))})
        for o in xml.iter("object"):
            b = [float(o.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")]
            coco["annotations"].append({"id": len(coco["annotations"]), "image_id": number,
                                        "category_id": ids[o.findtext("name")],
                                        "bbox": [b[0] - 1, b[1] - 1, b[2] - b[0] + 1, b[3] - b[1] + 1],
                                        "iscrowd": int(o.findtext("difficult") == "1")})
    return coco


BASE, NOVEL = ["penguin", "fish"], ["puffin"]
TINY = ["detection.min_size=128", "detection.max_size=160", "detection.rois_per_image=16",
        "detection.box_head_dim=64", "detection.regions_per_image=8", "detection.crop_size=64",
        "detection.background_reps=2", "detection.reps_per_class=2", "detection.fit_boxes_per_class=4",
        "detection.fit_background_images=3", "detection.extra_train_folders=[]",
        "detection.fpn_channels=32", "detection.trainable_blocks=1", "detection.shots=[1, 2]",
        "detection.episodes=2", "train.lr=0.002", f"detection.base_classes={BASE}",
        f"detection.novel_classes={NOVEL}"]


def copy_small_fsod(data_root: Path, parent: Path) -> Path:
    """fsod-mini images with penguins, fish and puffins: 8 for training (2 with puffins, the
    novel class's support), 4 for testing, copied to ``parent/fsod-small``."""
    source = data_root / "fsod-mini"
    root = parent / "fsod-small"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    for split, wanted in (("train", {"penguin": 4, "fish": 2, "puffin": 2}), ("test", {"penguin": 2, "puffin": 2})):
        chosen = []
        for image in load_voc_detection(source, split).images:
            labels = {source_classes(source)[c] for c in image.labels.tolist()}
            for name in list(wanted):
                if name in labels and wanted[name] > 0 and labels <= {"penguin", "fish", "puffin"}:
                    wanted[name] -= 1
                    chosen.append(image.path.stem)
                    break
        for image_id in chosen:
            shutil.copy(source / "JPEGImages" / f"{image_id}.jpg", root / "JPEGImages")
            shutil.copy(source / "Annotations" / f"{image_id}.xml", root / "Annotations")
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(chosen) + "\n")
    return root


_CLASSES = {}


def source_classes(source: Path) -> list[str]:
    if source not in _CLASSES:
        _CLASSES[source] = load_voc_detection(source, "test").class_names
    return _CLASSES[source]


def overrides(root: Path, *more: str) -> list[str]:
    values = [f"data.root={root.parent}", f"detection.folder={root.name}", *TINY, *more]
    return [arg for value in values for arg in ("--set", value)]
