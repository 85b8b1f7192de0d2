"""scikit-learn's predict_proba columns are the classes seen in training; the evaluator's are
every label of the model under test."""

from __future__ import annotations

import numpy as np


def in_label_space(probabilities: np.ndarray, classes: np.ndarray, num_labels: int) -> np.ndarray:
    """(n, num_labels) probabilities; labels the baseline never saw get 0."""
    out = np.zeros((probabilities.shape[0], num_labels), dtype=np.float64)
    out[:, np.asarray(classes, dtype=np.int64)] = probabilities
    return out
