"""Calibration of a classifier's confidence (pure numpy): does 90% confident mean 90% right?

    expected_calibration_error(confidence, correct)   ECE over 15 equal-width bins
    brier_score(probabilities, truth)                  multi-class Brier score
    reliability_table(confidence, correct)             per bin: count, confidence, accuracy
    confident_errors(...)                              the wrong predictions it was surest of

ECE = sum over bins of (examples in bin / all) * |accuracy in bin - mean confidence in bin|
(Guo et al., "On Calibration of Modern Neural Networks", 2017), with the confidence being the
probability of the predicted class.
"""

from __future__ import annotations

import numpy as np

BINS = 15
CONFIDENT_ERRORS = 20


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    # Bins (k/bins, (k+1)/bins]; a confidence of exactly 0 goes to the first bin.
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict]:
    """One row per bin (empty bins included, so the table always has `bins` rows)."""
    which = _bin_of(confidence, bins)
    rows = []
    for k in range(bins):
        members = which == k
        count = int(members.sum())
        rows.append({
            "low": round(k / bins, 6), "high": round((k + 1) / bins, 6), "count": count,
            "confidence": round(float(confidence[members].mean()), 6) if count else None,
            "accuracy": round(float(correct[members].mean()), 6) if count else None,
        })
    return rows


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               bins: int = BINS) -> float:
    which = _bin_of(confidence, bins)
    total = len(confidence)
    if total == 0:
        return 0.0
    gap = 0.0
    for k in range(bins):
        members = which == k
        if members.any():
            gap += members.sum() / total * abs(correct[members].mean() - confidence[members].mean())
    return float(gap)


def brier_score(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Mean over examples of sum over classes of (p_k - [k is the true class])^2; 0 is perfect,
    2 is sure and wrong."""
    if len(truth) == 0:
        return 0.0
    onehot = np.zeros_like(probabilities, dtype=np.float64)
    onehot[np.arange(len(truth)), truth] = 1.0
    return float(((probabilities - onehot) ** 2).sum(axis=1).mean())


def confident_errors(confidence: np.ndarray, correct: np.ndarray,
                     limit: int = CONFIDENT_ERRORS) -> list[int]:
    """Indices of the wrong predictions, most confident first (ties: dataset order)."""
    wrong = np.flatnonzero(~correct)
    order = sorted(wrong.tolist(), key=lambda i: (-float(confidence[i]), i))
    return order[:limit]
