"""Evaluation routines, built from a model rather than a trainer, and the ``metric-eval`` CLI."""
