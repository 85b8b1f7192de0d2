"""probe: logistic regression on the frozen base encoder's embeddings (a linear probe).

What the finetune must beat to show that changing the encoder's weights was worth it: the
same encoder, the same training data, only a linear classifier trained.
"""

from __future__ import annotations

import numpy as np

from .probabilities import in_label_space

C = 10.0  # embeddings are L2-normalised: a weak penalty fits them best
MAX_ITER = 2000


def predict(train_embeddings: np.ndarray, train_labels: list[int], embeddings: np.ndarray,
            num_labels: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=MAX_ITER)
    model.fit(train_embeddings, train_labels)
    return in_label_space(model.predict_proba(embeddings), model.classes_, num_labels)
