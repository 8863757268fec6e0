"""The few-shot detector's parts: a torchvision Faster R-CNN composition whose box classifier is a RepMet distance head."""

from repmet.models.detection.repmet_box_predictor import RepMetBoxPredictor

__all__ = ["RepMetBoxPredictor"]
