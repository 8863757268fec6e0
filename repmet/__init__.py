"""repmet: metric learning for few-shot and fine-grained recognition."""

__version__ = "0.1.0"
