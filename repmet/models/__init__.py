from repmet.models import efficientnet_lite, torchvision_backbones  # noqa: F401  (registers the backbones)
from repmet.models.conv4 import Conv4
from repmet.models.efficientnet_lite import EfficientNetLite0
from repmet.models.embedding_head import EmbeddingHead
from repmet.models.frozen import FrozenBackbone
from repmet.models.registry import available_models, create_model, register_model

__all__ = ["Conv4", "EfficientNetLite0", "EmbeddingHead", "FrozenBackbone", "available_models", "create_model",
           "register_model"]
