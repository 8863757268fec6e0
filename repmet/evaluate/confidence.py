"""The mean of per-episode scores and its 95% confidence interval, as every evaluation reports it."""

from __future__ import annotations

import math

import numpy as np


def mean_and_ci95(values: list[float]) -> tuple[float, float]:
    """``(mean, 1.96 * sample std / sqrt(n))``; the interval is 0 for a single value."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), 1.96 * std / math.sqrt(len(values))
