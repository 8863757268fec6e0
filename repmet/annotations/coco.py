"""Detection data in COCO's JSON format (``images``, ``annotations``, ``categories``), for users'
own data: one JSON file per split and a folder of images. ``bbox`` is ``[x, y, width, height]``
in pixels; ``iscrowd`` boxes are kept for evaluation and ignored in training, like VOC's
``difficult``. Classes are the category names, sorted, so they agree with a VOC copy of the set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from repmet.annotations.boxes import BoxedImage, BoxRepairs, DetectionSplit, boxes_array, checked_box
from repmet.errors import UserError


def _read(annotation_file: Path) -> dict:
    try:
        data = json.loads(annotation_file.read_text())
    except FileNotFoundError:
        raise UserError(f"COCO annotation file {annotation_file} does not exist") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"COCO annotation file {annotation_file} does not parse at line {exc.lineno}, column "
                        f"{exc.colno} ({exc.msg}); fix the file") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations",
                                                                                         "categories")):
        raise UserError(f"{annotation_file} is not a COCO detection file: it needs the lists 'images', "
                        f"'annotations' and 'categories'")
    return data


def _field(record: dict, key: str, kind, where: str):
    value = record.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UserError(f"{where}: '{key}' is missing or not {getattr(kind, '__name__', kind)}; fix the file")
    return value


def load_coco_detection(annotation_file: str | Path, image_dir: str | Path, description: str | None = None) -> DetectionSplit:
    annotation_file, image_dir = Path(annotation_file).expanduser(), Path(image_dir).expanduser()
    data = _read(annotation_file)
    categories = {}
    for i, category in enumerate(data["categories"]):
        where = f"{annotation_file} categories[{i}]"
        categories[_field(category, "id", int, where)] = _field(category, "name", str, where)
    class_names = sorted(set(categories.values()))
    index = {name: i for i, name in enumerate(class_names)}
    by_image: dict[int, list[dict]] = {}
    for i, annotation in enumerate(data["annotations"]):
        image_id = _field(annotation, "image_id", int, f"{annotation_file} annotations[{i}]")
        by_image.setdefault(image_id, []).append(annotation)
    repairs, images = BoxRepairs(), []
    for i, record in enumerate(data["images"]):
        where = f"{annotation_file} images[{i}]"
        image_id = _field(record, "id", int, where)
        path = image_dir / _field(record, "file_name", str, where)
        if not path.is_file():
            raise UserError(f"{where} names {path}, which does not exist; add the image or remove the entry")
        width, height = _field(record, "width", int, where), _field(record, "height", int, where)
        boxes, labels, difficult = [], [], []
        for annotation in by_image.get(image_id, []):
            a_where = f"{annotation_file} annotation id {annotation.get('id')}"
            category = _field(annotation, "category_id", int, a_where)
            if category not in categories:
                raise UserError(f"{a_where}: category_id {category} is not in 'categories'; fix the file")
            bbox = annotation.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
                raise UserError(f"{a_where}: 'bbox' must be [x, y, width, height]; fix the file")
            x, y, w, h = (float(v) for v in bbox)
            box = checked_box(x, y, x + w, y + h, width, height, f"{a_where} ({categories[category]})", repairs)
            if box is not None:
                boxes.append(box)
                labels.append(index[categories[category]])
                difficult.append(bool(annotation.get("iscrowd", 0)))
        images.append(BoxedImage(path, width, height, boxes_array(boxes), np.asarray(labels, np.int64),
                                 np.asarray(difficult, bool)))
    if not images:
        raise UserError(f"{annotation_file} lists no images")
    description = description or f"{annotation_file.name} ({image_dir})"
    return DetectionSplit(images, class_names, description, repairs.report(description))
