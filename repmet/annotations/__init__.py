"""Boxed-image annotations in Pascal VOC's layout and COCO JSON, read without torch (training,
evaluation and the detector runtime's command line all use these readers)."""

from repmet.annotations.boxes import BoxedImage, DetectionSplit, merge_splits
from repmet.annotations.coco import load_coco_detection
from repmet.annotations.voc import load_voc_detection

__all__ = ["BoxedImage", "DetectionSplit", "load_coco_detection", "load_voc_detection", "merge_splits"]
