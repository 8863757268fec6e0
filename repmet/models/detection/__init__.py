"""The few-shot detector's parts: a torchvision Faster R-CNN composition whose box classifier is a RepMet distance head."""

from repmet.models.detection.faster_rcnn import DetectorSize, build_repmet_faster_rcnn
from repmet.models.detection.ignoring_rpn import IgnoringRegionProposalNetwork
from repmet.models.detection.lite0_fpn import Lite0FPN
from repmet.models.detection.repmet_box_predictor import RepMetBoxPredictor
from repmet.models.detection.repmet_roi_heads import RepMetRoIHeads

__all__ = ["DetectorSize", "IgnoringRegionProposalNetwork", "Lite0FPN", "RepMetBoxPredictor", "RepMetRoIHeads",
           "build_repmet_faster_rcnn"]
