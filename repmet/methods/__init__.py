"""Methods as plug-ins: one module per method, registered by name (``method:`` in a config).

Adding a method is one module here that defines a :class:`~repmet.methods.base.Method` (and
its config section dataclass, if it has settings) and calls ``register_method``, plus its
import below.
"""

from repmet.methods import detector, magnet, protonets, repmet_classifier  # noqa: F401  (register the built-in methods)
from repmet.methods.base import BatchLearner, EvalRequest, Method, TrainedGallery
from repmet.methods.registry import available_methods, get_method, register_method
from repmet.methods.trained import TrainedModel, describe, open_checkpoint

__all__ = ["BatchLearner", "EvalRequest", "Method", "TrainedGallery", "TrainedModel", "available_methods",
           "describe", "get_method", "open_checkpoint", "register_method"]
