"""Evaluation routines, built from a model rather than a trainer, and the ``metric-eval`` CLI.

Each kind of evaluation registers itself (:mod:`repmet.evaluate.registry`) from its module,
imported here."""

from repmet.evaluate import detection, episodes, fine_grained  # noqa: F401  (register the built-in evaluations)
