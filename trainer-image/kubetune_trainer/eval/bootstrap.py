"""Confidence intervals by the bootstrap over examples, paired across models (pure numpy).

Every system (the model and each baseline) is scored on the *same* resamples of the
evaluation set, so the interval of a difference between two systems is the paired bootstrap:
the example-to-example variation both share cancels, and what is left is whether one is
really better. Seeded: the same predictions give the same intervals.

    dists = paired(stat_a, {"tfidf": stat_b}, n=240)
    interval(dists.model["f1"])                                 # 95% CI of the model's f1
    interval(dists.model["f1"] - dists.baselines["tfidf"]["f1"])  # 95% CI of the paired delta

The model's samples are kept apart from the baselines' (`Paired`), never under a name of its
own among them: the user's baseline model is named `model`, and a shared dict let it replace
the model's samples, so every delta compared the baseline with itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95

Statistic = Callable[[np.ndarray], dict[str, float]]
"""Metrics of one system on the examples at the given indices (repeats allowed)."""


Samples = dict[str, np.ndarray]
"""metric -> one system's value on each resample (NaN where a resample had none)."""


class Paired(NamedTuple):
    """The model's samples and each baseline's, all drawn on the same resamples."""

    model: Samples
    baselines: dict[str, Samples]


def _resample(statistics: list[Statistic], n: int, resamples: int, seed: int) -> list[Samples]:
    rng = np.random.default_rng(seed)
    values: list[dict[str, list[float]]] = [{} for _ in statistics]
    for _ in range(resamples):
        # One draw per resample, shared by every system: that is what makes deltas paired.
        indices = rng.integers(0, n, size=n)
        for mine, statistic in zip(values, statistics, strict=True):
            for metric, value in statistic(indices).items():
                mine.setdefault(metric, []).append(value)
    return [{metric: np.asarray(v, dtype=np.float64) for metric, v in metrics.items()}
            for metrics in values]


def distributions(statistics: dict[str, Statistic], n: int, resamples: int = RESAMPLES,
                  seed: int = SEED) -> dict[str, Samples]:
    """system -> metric -> its value on each resample (NaN where a resample had none)."""
    return dict(zip(statistics, _resample(list(statistics.values()), n, resamples, seed),
                    strict=True))


def paired(model: Statistic, baselines: dict[str, Statistic], n: int,
           resamples: int = RESAMPLES, seed: int = SEED) -> Paired:
    """The model's and every baseline's samples on the same resamples; any baseline name,
    `model` included, is safe (the model is not one of the names)."""
    mine, *theirs = _resample([model, *baselines.values()], n, resamples, seed)
    return Paired(mine, dict(zip(baselines, theirs, strict=True)))


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The percentile interval holding `level` of the finite samples; None if there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
