"""zero-shot: each text gets the label whose description it is most similar to (cosine of
the base encoder's embeddings). Needs no training data, only a sentence per label: the
spec's labelDescriptions, or the label name read as words."""

from __future__ import annotations

import numpy as np

TEMPERATURE = 0.05  # similarities -> probabilities (softmax); only the argmax is scored


def description(label: str, descriptions: dict[str, str]) -> str:
    return descriptions.get(label) or label.replace("_", " ").replace("-", " ")


def predict(label_embeddings: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Both L2-normalised: the dot product is the cosine similarity."""
    similarity = embeddings @ label_embeddings.T
    logits = similarity / TEMPERATURE
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)
