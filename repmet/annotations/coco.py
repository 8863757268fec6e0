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
from repmet.limits import MAX_JSON_BYTES, NestedTooDeep, loads_within_depth


def _read(annotation_file: Path) -> dict:
    try:
        if annotation_file.stat().st_size > MAX_JSON_BYTES:
            raise UserError(f"COCO annotation file {annotation_file} is {annotation_file.stat().st_size} bytes, more "
                            f"than the limit of {MAX_JSON_BYTES} for a JSON file; split it")
        data = loads_within_depth(annotation_file.read_text())
    except NestedTooDeep as exc:  # thousands deep included: no COCO file is
        raise UserError(f"COCO annotation file {annotation_file} {exc}; fix the file") from None
    except FileNotFoundError:
        raise UserError(f"COCO annotation file {annotation_file} does not exist") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"COCO annotation file {annotation_file} does not parse at line {exc.lineno}, column "
                        f"{exc.colno} ({exc.msg}); fix the file") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise UserError(f"cannot read COCO annotation file {annotation_file} ({exc}); fix the file") from None
    except ValueError as exc:  # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        raise UserError(f"COCO annotation file {annotation_file} does not parse ({exc}); fix the file") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations",
                                                                                         "categories")):
        raise UserError(f"{annotation_file} is not a COCO detection file: it needs the lists 'images', "
                        f"'annotations' and 'categories'")
    return data


def _record(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be an object {{...}}, got {type(value).__name__}; fix the file")
    return value


def confined(folder: Path, name: str, where: str) -> Path:
    """``folder / name``, which must stay inside ``folder`` (no absolute name, no ``..``, no link
    out of it): an annotation file from someone else must not make the program read elsewhere."""
    path = folder / name
    try:
        inside = Path(name).is_absolute() is False and path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise UserError(f"{where}: file_name {name!r} points outside the image folder {folder}; image files must lie "
                        f"inside it (copy them there)")
    return path


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
        category_id = _field(_record(category, where), "id", int, where)
        if category_id in categories:
            raise UserError(f"{where}: id {category_id} appears twice in 'categories'; fix the file")
        categories[category_id] = _field(category, "name", str, where)
    class_names = sorted(set(categories.values()))
    index = {name: i for i, name in enumerate(class_names)}
    by_image: dict[int, list[dict]] = {}
    for i, annotation in enumerate(data["annotations"]):
        image_id = _field(_record(annotation, f"{annotation_file} annotations[{i}]"), "image_id", int,
                          f"{annotation_file} annotations[{i}]")
        by_image.setdefault(image_id, []).append(annotation)
    repairs, images, seen = BoxRepairs(), [], set()
    for i, record in enumerate(data["images"]):
        where = f"{annotation_file} images[{i}]"
        image_id = _field(_record(record, where), "id", int, where)
        if image_id in seen:  # its boxes would be enrolled twice
            raise UserError(f"{where}: id {image_id} appears twice in 'images'; fix the file")
        seen.add(image_id)
        path = confined(image_dir, _field(record, "file_name", str, where), where)
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
            if not (isinstance(bbox, list) and len(bbox) == 4
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
                raise UserError(f"{a_where}: 'bbox' must be [x, y, width, height] (numbers); fix the file")
            try:
                x, y, w, h = (float(v) for v in bbox)
            except OverflowError:  # an integer beyond any float
                raise UserError(f"{a_where}: 'bbox' {bbox} is not finite; fix the file") from None
            if not np.isfinite([x, y, w, h, x + w, y + h]).all():
                raise UserError(f"{a_where}: 'bbox' {bbox} is not finite; fix the file")
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
