"""Error analysis: where the model goes wrong (pure functions over metrics and predictions).

- top_confusions: the most frequent (true label, predicted label) mistakes
- worst_classes:  the classes with the lowest F1 (among classes that occur)
- lowest_scoring: generated answers that match their reference worst

The report keeps long lists; the termination message keeps the top 10 of each
(`status.errorAnalysis`).
"""

from __future__ import annotations

import numpy as np

from .metrics import ClassScores

STATUS_ITEMS = 10  # status.errorAnalysis lists hold at most 10 entries (API maxItems)


def top_confusions(matrix: np.ndarray, labels: list[str], limit: int) -> list[dict]:
    """Off-diagonal cells by count (ties: by true label, then predicted label)."""
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    rows, cols = np.nonzero(off_diagonal)
    counts = off_diagonal[rows, cols]
    # Sorting the non-zero cells only: with 1,000 classes the matrix has a million cells,
    # but only as many non-zero ones as there are mistakes.
    order = sorted(range(len(counts)), key=lambda i: (-int(counts[i]), int(rows[i]), int(cols[i])))
    return [{"label": labels[rows[i]], "predicted": labels[cols[i]], "count": int(counts[i])}
            for i in order[:limit]]


def worst_classes(scores: ClassScores, labels: list[str], limit: int) -> list[dict]:
    """Classes that occur in the data, lowest F1 first (ties: more examples first, then name)."""
    occurring = [i for i in range(len(labels)) if scores.support[i] > 0]
    occurring.sort(key=lambda i: (float(scores.f1[i]), -int(scores.support[i]), labels[i]))
    return [{"label": labels[i], "f1": round(float(scores.f1[i]), 6),
             "support": int(scores.support[i])} for i in occurring[:limit]]


def per_class_table(scores: ClassScores, labels: list[str]) -> list[dict]:
    """Every class the model knows, in id order: the report's per-class section."""
    return [
        {"label": label, "precision": round(float(scores.precision[i]), 6),
         "recall": round(float(scores.recall[i]), 6), "f1": round(float(scores.f1[i]), 6),
         "support": int(scores.support[i]), "predicted": int(scores.predicted[i])}
        for i, label in enumerate(labels)
    ]


def lowest_scoring(records: list[dict], limit: int, key: str = "tokenF1") -> list[dict]:
    """Generation records with the lowest `key` (ties: the higher loss first, then line).

    Records without `key` (generation metrics not asked for) are ranked by loss alone.
    """
    def rank(record: dict):
        score = record.get(key)
        loss = record.get("loss")
        return (score if score is not None else 0.0, -(loss if loss is not None else 0.0),
                record.get("line", 0))

    return sorted(records, key=rank)[:limit]


def status_summary(confusions: list[dict], worst: list[dict]) -> dict:
    """The part of the analysis that goes into status.errorAnalysis."""
    return {
        "confusion": confusions[:STATUS_ITEMS],
        "worstClasses": [{"label": c["label"], "f1": c["f1"]} for c in worst[:STATUS_ITEMS]],
    }
