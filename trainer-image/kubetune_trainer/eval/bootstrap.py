"""Confidence intervals by the bootstrap over examples, paired across models (pure numpy).

Every system (the model and each baseline) is scored on the *same* resamples of the
evaluation set, so the interval of a difference between two systems is the paired bootstrap:
the example-to-example variation both share cancels, and what is left is whether one is
really better. Seeded: the same predictions give the same intervals.

    dists = distributions({"model": stat_a, "tfidf": stat_b}, n=240)
    interval(dists["model"]["f1"])                          # 95% CI of the model's f1
    interval(dists["model"]["f1"] - dists["tfidf"]["f1"])   # 95% CI of the paired delta
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95

Statistic = Callable[[np.ndarray], dict[str, float]]
"""Metrics of one system on the examples at the given indices (repeats allowed)."""


def distributions(statistics: dict[str, Statistic], n: int, resamples: int = RESAMPLES,
                  seed: int = SEED) -> dict[str, dict[str, np.ndarray]]:
    """system -> metric -> its value on each resample (NaN where a resample had none)."""
    rng = np.random.default_rng(seed)
    values: dict[str, dict[str, list[float]]] = {name: {} for name in statistics}
    for _ in range(resamples):
        # One draw per resample, shared by every system: that is what makes deltas paired.
        indices = rng.integers(0, n, size=n)
        for name, statistic in statistics.items():
            for metric, value in statistic(indices).items():
                values[name].setdefault(metric, []).append(value)
    return {name: {metric: np.asarray(v, dtype=np.float64) for metric, v in metrics.items()}
            for name, metrics in values.items()}


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The percentile interval holding `level` of the finite samples; None if there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
