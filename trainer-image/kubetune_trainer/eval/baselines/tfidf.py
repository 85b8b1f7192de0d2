"""tfidf: TF-IDF of word 1- and 2-grams, then logistic regression (scikit-learn).

The classic strong text-classification baseline; sublinear term frequency and a fixed C,
so it is not tuned on the evaluation set.
"""

from __future__ import annotations

import numpy as np

from .probabilities import in_label_space

C = 10.0
MAX_ITER = 2000


def predict(train_texts: list[str], train_labels: list[int], texts: list[str],
            num_labels: int) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                          LogisticRegression(C=C, max_iter=MAX_ITER))
    model.fit(train_texts, train_labels)
    return in_label_space(model.predict_proba(texts), model.classes_, num_labels)
