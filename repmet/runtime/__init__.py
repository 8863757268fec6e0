"""Serving exported artifacts: few-shot classification and detection in Python, without torch
for the ONNX Runtime and TensorRT backends."""

from repmet.artifact.reader import Artifact
from repmet.runtime.classifier import FewShotClassifier, Prediction
from repmet.runtime.detector import Detection, FewShotDetector
from repmet.runtime.few_shot_runtime import FewShotRuntime, open_runtime
from repmet.artifact.gallery_file import Gallery

__all__ = ["Artifact", "Detection", "FewShotClassifier", "FewShotDetector", "FewShotRuntime", "Gallery", "Prediction", "open_runtime"]
