"""Detection data in Pascal VOC's layout::

    ROOT/JPEGImages/<id>.jpg
    ROOT/Annotations/<id>.xml      (size, and one <object> per box: name, difficult, bndbox)
    ROOT/ImageSets/Main/<split>.txt

VOC's ``bndbox`` counts pixels from 1 and includes ``xmax``/``ymax``; boxes become 0-based
continuous coordinates (``x1 = xmin - 1``, ``x2 = xmax``). The class list is the sorted union of
the object names in every split's annotations, so labels agree across splits.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from repmet.annotations.boxes import BoxedImage, BoxRepairs, DetectionSplit, boxes_array, checked_box
from repmet.errors import UserError

LAYOUT_HELP = ("expected Pascal VOC's layout: JPEGImages/<id>.jpg, Annotations/<id>.xml and "
               "ImageSets/Main/<split>.txt")


def voc_splits(root: Path) -> list[str]:
    folder = root / "ImageSets" / "Main"
    return sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []


def _split_ids(root: Path, split: str) -> list[str]:
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        available = voc_splits(root)
        raise UserError(f"{listing} does not exist ({'splits here: ' + ', '.join(available) if available else LAYOUT_HELP})")
    ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    if not ids:
        raise UserError(f"{listing} lists no images")
    bad = next((i for i in ids if "/" in i or "\\" in i or i in (".", "..")), None)
    if bad is not None:  # an id names a file inside JPEGImages/ and Annotations/, never a path out of them
        raise UserError(f"{listing} lists {bad!r}, which is a path, not an image id; ids are plain file names "
                        f"without their suffix")
    return ids


def _parse(xml_path: Path) -> ET.Element:
    try:
        return ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise UserError(f"annotation {xml_path} does not parse at line {line}, column {column} ({exc.msg}); fix "
                        f"or remove the file") from None
    except OSError as exc:
        raise UserError(f"cannot read annotation {xml_path}: {exc}") from None


def _number(element: ET.Element, tag: str, xml_path: Path) -> float:
    child = element.find(tag)
    try:
        value = float(child.text)
    except (AttributeError, TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):  # "nan", "inf", "1e400": int() of a size would raise
        raise UserError(f"annotation {xml_path}: <{tag}> is missing or not a finite number; fix the file")
    return value


def _objects(xml_path: Path) -> tuple[tuple[int, int], list[tuple[str, bool, tuple[float, ...]]]]:
    root = _parse(xml_path)
    size = root.find("size")
    if size is None:
        raise UserError(f"annotation {xml_path} has no <size>; VOC annotations give width and height")
    width, height = int(_number(size, "width", xml_path)), int(_number(size, "height", xml_path))
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise UserError(f"annotation {xml_path}: an <object> lacks its <name> or <bndbox>; fix the file")
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        coords = tuple(_number(box, tag, xml_path) for tag in ("xmin", "ymin", "xmax", "ymax"))
        objects.append((name, difficult, coords))
    return (width, height), objects


def load_voc_detection(root: str | Path, split: str) -> DetectionSplit:
    """The boxed images of ``split``; every listed image and annotation must exist."""
    root = Path(root).expanduser()
    if not (root / "Annotations").is_dir() or not (root / "JPEGImages").is_dir():
        raise UserError(f"{root} is not a VOC-layout detection dataset; {LAYOUT_HELP}")
    parsed = {}
    for name in voc_splits(root):  # every split, for one class list shared by all of them
        for image_id in _split_ids(root, name):
            if image_id not in parsed:
                xml_path = root / "Annotations" / f"{image_id}.xml"
                if not xml_path.is_file():
                    raise UserError(f"{root / 'ImageSets' / 'Main' / (name + '.txt')} lists {image_id}, but "
                                    f"{xml_path} does not exist; add it or remove the line")
                parsed[image_id] = _objects(xml_path)
    class_names = sorted({name for _, objects in parsed.values() for name, _, _ in objects})
    index = {name: i for i, name in enumerate(class_names)}
    repairs = BoxRepairs()
    images = []
    for image_id in _split_ids(root, split):
        path = root / "JPEGImages" / f"{image_id}.jpg"
        if not path.is_file():
            raise UserError(f"{root / 'ImageSets' / 'Main' / (split + '.txt')} lists {image_id}, but {path} does not "
                            f"exist; add the image or remove the line")
        (width, height), objects = parsed[image_id]
        boxes, labels, difficult = [], [], []
        for number, (name, hard, (xmin, ymin, xmax, ymax)) in enumerate(objects):
            box = checked_box(xmin - 1.0, ymin - 1.0, xmax, ymax, width, height,
                              f"{image_id}.xml object {number + 1} ({name})", repairs)
            if box is not None:
                boxes.append(box)
                labels.append(index[name])
                difficult.append(hard)
        images.append(BoxedImage(path, width, height, boxes_array(boxes), np.asarray(labels, np.int64),
                                 np.asarray(difficult, bool)))
    description = f"{root.name} {split} ({root})"
    return DetectionSplit(images, class_names, description, repairs.report(description))
