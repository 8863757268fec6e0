"""Serving exported artifacts: few-shot classification and detection in Python, without torch
for the ONNX Runtime and TensorRT backends."""

from repmet.artifact.reader import Artifact
from repmet.runtime.classifier import FewShotClassifier, Prediction
from repmet.runtime.detector import Detection, FewShotDetector
from repmet.artifact.gallery_file import Gallery

__all__ = ["Artifact", "Detection", "FewShotClassifier", "FewShotDetector", "Gallery", "Prediction"]
