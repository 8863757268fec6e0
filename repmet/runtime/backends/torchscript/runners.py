"""TorchScript graphs (embedding and head; detection and box embedding), loaded straight onto
their device. torchvision is imported so that its operators (RoIAlign, NMS) are registered."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision  # noqa: F401  registers torchvision::roi_align and torchvision::nms

from repmet.runtime.backends.torch_common import TorchClassifierRunner, TorchDetectorRunner, torch_device


class TorchScriptBackend(TorchClassifierRunner):
    name = "torchscript"

    def __init__(self, embedding_path: Path, head_path: Path, device: str = "cpu") -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            # Straight onto the device: a frozen graph keeps its weights as constants, which
            # Module.to() does not move (seen on CUDA, where .to() left them on the CPU).
            embedding = torch.jit.load(str(embedding_path), map_location=torch_device(device))
            head = torch.jit.load(str(head_path), map_location=torch_device(device))
        super().__init__(embedding.eval(), head.eval(), device)


class TorchScriptDetectorBackend(TorchDetectorRunner):
    name = "torchscript"

    def __init__(self, detection_path: Path, embedding_path: Path, device: str = "cpu") -> None:
        self.device = device
        target = torch_device(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            # straight onto the device: a frozen graph's weights are constants that .to() leaves
            detect = torch.jit.load(str(detection_path), map_location=target).eval()
            embed = torch.jit.load(str(embedding_path), map_location=target).eval()
        super().__init__(detect, embed, target)
