"""Serving exported artifacts: few-shot classification and detection in Python, without torch
for the ONNX Runtime and TensorRT backends."""

from repmet.runtime.artifact import Artifact
from repmet.runtime.classifier import FewShotClassifier, Prediction
from repmet.runtime.detector import Detection, FewShotDetector
from repmet.runtime.gallery import Gallery

__all__ = ["Artifact", "Detection", "FewShotClassifier", "FewShotDetector", "Gallery", "Prediction"]
