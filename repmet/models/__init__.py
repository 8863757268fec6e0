from repmet.models import efficientnet_lite, torchvision_backbones  # noqa: F401  (registers the backbones)
from repmet.models.conv4 import Conv4
from repmet.models.distance_head import DistanceHead
from repmet.models.efficientnet_lite import EfficientNetLite0
from repmet.models.embedding_head import EmbeddingHead, ResidualEmbeddingHead
from repmet.models.embedding_net import EmbeddingNet
from repmet.models.factory import build_backbone, build_fine_grained_model
from repmet.models.fine_grained import AUX_LOSS_WEIGHT, FineGrainedModel
from repmet.models.frozen import FrozenBackbone
from repmet.models.partial_freeze import PartiallyFrozenBackbone
from repmet.models.registry import available_models, create_model, input_normalization, register_model
from repmet.models.representatives import RepresentativesHead

__all__ = ["AUX_LOSS_WEIGHT", "Conv4", "DistanceHead", "EfficientNetLite0", "EmbeddingHead", "EmbeddingNet",
           "FineGrainedModel", "FrozenBackbone", "PartiallyFrozenBackbone", "ResidualEmbeddingHead", "RepresentativesHead", "available_models", "build_backbone",
           "build_fine_grained_model", "create_model", "input_normalization", "register_model"]
