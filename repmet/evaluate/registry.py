"""How ``metric-eval`` evaluates a trained model: each method names its evaluation
(``Method.evaluation``: "episodes", "fine_grained", "detection"), and the evaluate stage registers
one function per name here (``@EVALUATIONS.register``, beside the evaluation code). So methods, a shared part, import nothing from the evaluate stage
above them (tests/test_contracts.py: no upward import), and a new method with an existing kind of
evaluation needs nothing here."""

from __future__ import annotations

from typing import Any, Callable

from repmet.registry import Registry


def _load_builtins() -> None:
    import repmet.evaluate  # noqa: F401  (its modules register the built-in evaluations)


EVALUATIONS: Registry[Callable[..., dict[str, Any]]] = Registry("evaluation", _load_builtins)


def evaluate_trained(trained, request) -> dict[str, Any]:
    """Evaluate a :class:`repmet.methods.trained.TrainedModel` as its method asks; a JSON-able result."""
    return EVALUATIONS.get(trained.method.evaluation, where=f"method {trained.method.name}")(trained, request)
