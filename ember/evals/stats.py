"""Bootstrap confidence intervals: of a mean over items, and of the paired difference between two runs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95


def bootstrap_ci(values: Sequence[float], resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean (nan, nan for no values)."""
    data = np.asarray(values, dtype=np.float64)
    if not len(data):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(
    baseline: Sequence[float], candidate: Sequence[float], resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of candidate − baseline over paired items and its 95% interval, items resampled together."""
    if len(baseline) != len(candidate):
        raise ValueError("paired values must have the same length")
    diffs = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    low, high = bootstrap_ci(diffs, resamples, seed)
    return (float(diffs.mean()) if len(diffs) else float("nan")), low, high
