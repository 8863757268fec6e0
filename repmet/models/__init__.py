from repmet.models.conv4 import Conv4
from repmet.models.registry import available_models, create_model, register_model

__all__ = ["Conv4", "available_models", "create_model", "register_model"]
