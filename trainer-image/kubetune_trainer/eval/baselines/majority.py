"""majority: always the most frequent training label (scikit-learn's DummyClassifier)."""

from __future__ import annotations

import numpy as np

from .probabilities import in_label_space


def predict(train_texts: list[str], train_labels: list[int], texts: list[str],
            num_labels: int) -> np.ndarray:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="most_frequent")
    model.fit(np.zeros((len(train_labels), 1)), train_labels)
    return in_label_space(model.predict_proba(np.zeros((len(texts), 1))), model.classes_,
                          num_labels)
