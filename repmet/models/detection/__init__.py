"""The few-shot detector's parts: a class-agnostic torchvision Faster R-CNN that finds objects,
and RepMet's distance head on crop embeddings of its regions that says which class each is."""

from repmet.models.detection.faster_rcnn import (ClassAgnosticRoIHeads, DetectorSize, RegionGallery, RepMetFasterRCNN,
                                                 build_repmet_faster_rcnn)
from repmet.models.detection.ignoring_rpn import IgnoringRegionProposalNetwork
from repmet.models.detection.lite0_fpn import Lite0FPN
from repmet.models.detection.objectness_box_predictor import ObjectnessBoxPredictor
from repmet.models.detection.region_embedder import RegionEmbedder

__all__ = ["ClassAgnosticRoIHeads", "DetectorSize", "IgnoringRegionProposalNetwork", "Lite0FPN",
           "ObjectnessBoxPredictor", "RegionEmbedder", "RegionGallery", "RepMetFasterRCNN", "build_repmet_faster_rcnn"]
