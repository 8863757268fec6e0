"""Detection datasets (Pascal VOC layout, COCO JSON), base/novel class splits, and few-shot support sets."""

from repmet.annotations import BoxedImage, DetectionSplit, load_coco_detection, load_voc_detection, merge_splits
from repmet.data.detection.fewshot_split import (BaseNovelClasses, BaseTrainingImage, SupportBox,
                                                 base_training_images, sample_support)

__all__ = ["BaseNovelClasses", "BaseTrainingImage", "BoxedImage", "DetectionSplit", "SupportBox",
           "base_training_images", "load_coco_detection", "load_voc_detection", "merge_splits",
           "sample_support"]
