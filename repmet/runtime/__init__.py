"""Serving exported artifacts: few-shot classification in Python, without torch for the
ONNX Runtime and TensorRT backends."""

from repmet.runtime.artifact import Artifact
from repmet.runtime.classifier import FewShotClassifier, Prediction
from repmet.runtime.gallery import Gallery

__all__ = ["Artifact", "FewShotClassifier", "Gallery", "Prediction"]
