"""Evaluation metrics as pure functions of predictions: no model, no torch, no I/O.

Classification (ids 0..n-1 into a label list):
    confusion_matrix(truth, predicted, n)      counts[true][predicted]
    per_class_scores(matrix)                   precision, recall, f1, support per class
    classification_metrics(matrix, average)    accuracy, precision, recall, f1
    label_metrics(truth, predicted, n, average) the same from label arrays (for the bootstrap)

Generation (strings):
    exact_match, token_f1 (SQuAD-style normalised tokens), rouge_l (rouge-score's ROUGE-L F)
    perplexity(loss_sum, tokens)               exp of the mean token loss

The averages follow scikit-learn's definitions (its tests check that they agree), so a number
in an EvalJob's status means what the same name means in a notebook.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

AVERAGES = ("macro", "micro", "weighted")
# exp() of a mean loss above this overflows a float; a perplexity that large means "useless".
MAX_LOG_PERPLEXITY = 700.0


# ---------------------------------------------------------------------------------------------
# Classification


def confusion_matrix(truth: Sequence[int], predicted: Sequence[int], num_classes: int) -> np.ndarray:
    """counts[i][j]: examples of class i predicted as class j (int64, num_classes square)."""
    truth_ids = np.asarray(truth, dtype=np.int64)
    predicted_ids = np.asarray(predicted, dtype=np.int64)
    if truth_ids.shape != predicted_ids.shape:
        raise ValueError("truth and predicted must have the same length")
    # One bincount over flat cell indices: linear in the examples, no Python loop.
    cells = np.bincount(truth_ids * num_classes + predicted_ids, minlength=num_classes ** 2)
    return cells.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassScores:
    """Per-class scores; arrays indexed by class id."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray  # examples whose true label is the class
    predicted: np.ndarray  # examples predicted as the class

    @property
    def present(self) -> np.ndarray:
        """Classes that occur in the data or in the predictions.

        Averages run over these only, as scikit-learn does without an explicit label list: a
        class the model knows but that neither the data nor the model ever produced says
        nothing about this evaluation.
        """
        return (self.support + self.predicted) > 0


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_scores(matrix: np.ndarray) -> ClassScores:
    return _scores_from_counts(np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0))


def _scores_from_counts(true_positive: np.ndarray, support: np.ndarray,
                        predicted: np.ndarray) -> ClassScores:
    true_positive = true_positive.astype(np.float64)
    false_positive = predicted - true_positive
    false_negative = support - true_positive
    return ClassScores(
        precision=_safe_divide(true_positive, predicted.astype(np.float64)),
        recall=_safe_divide(true_positive, support.astype(np.float64)),
        # 2tp / (2tp + fp + fn) equals 2PR / (P + R) wherever that is defined, and is 0 (not
        # undefined) for a class that was predicted but never true.
        f1=_safe_divide(2 * true_positive, 2 * true_positive + false_positive + false_negative),
        support=support,
        predicted=predicted,
    )


def classification_metrics(matrix: np.ndarray, average: str) -> dict[str, float]:
    """accuracy, precision, recall and f1 with the given average (macro, micro or weighted)."""
    total = int(matrix.sum())
    accuracy = int(np.trace(matrix)) / total if total else 0.0
    return _averaged(per_class_scores(matrix), accuracy, average)


def label_metrics(truth: np.ndarray, predicted: np.ndarray, num_classes: int,
                  average: str) -> dict[str, float]:
    """The same numbers as classification_metrics, from label arrays without the k x k
    matrix: what the bootstrap runs a thousand times, so it is linear in examples + classes."""
    correct = truth == predicted
    scores = _scores_from_counts(np.bincount(truth[correct], minlength=num_classes),
                                 np.bincount(truth, minlength=num_classes),
                                 np.bincount(predicted, minlength=num_classes))
    accuracy = float(correct.mean()) if len(truth) else 0.0
    return _averaged(scores, accuracy, average)


def _averaged(scores: ClassScores, accuracy: float, average: str) -> dict[str, float]:
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if average == "micro":
        # Single-label multiclass: every miss is one false positive and one false negative,
        # so micro precision, recall and F1 all equal accuracy.
        return {"accuracy": accuracy, "precision": accuracy, "recall": accuracy, "f1": accuracy}
    # macro: every class that occurs counts the same; weighted: by its number of examples.
    weights = (scores.present if average == "macro" else scores.support).astype(np.float64)
    weight_sum = weights.sum()

    def mean(values: np.ndarray) -> float:
        return float((values * weights).sum() / weight_sum) if weight_sum else 0.0

    return {"accuracy": accuracy, "precision": mean(scores.precision),
            "recall": mean(scores.recall), "f1": mean(scores.f1)}


# ---------------------------------------------------------------------------------------------
# Generation

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalise_answer(prediction) == normalise_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """F1 of the normalised tokens the prediction shares with the reference (as a bag)."""
    predicted = normalise_answer(prediction).split()
    expected = normalise_answer(reference).split()
    if not predicted or not expected:
        # Both empty is a perfect answer to an empty question; one empty shares nothing.
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens), via the rouge-score package.

    Its tokenizer keeps only ASCII letters and digits: text in other scripts scores 0.
    """
    if not prediction.strip() and not reference.strip():
        return 1.0  # same convention as token_f1; rouge-score says 0 for two empty strings
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


def perplexity(loss_sum: float, tokens: int) -> float:
    """exp(mean token loss) over all reference tokens of the dataset (not a mean of
    per-example perplexities, which short examples would dominate)."""
    if tokens <= 0:
        raise ValueError("perplexity needs at least one reference token")
    return math.exp(min(loss_sum / tokens, MAX_LOG_PERPLEXITY))


def generation_scores(prediction: str, reference: str) -> dict[str, float]:
    """The per-example generation metrics, under the names EvalJob uses."""
    return {"exactMatch": exact_match(prediction, reference),
            "tokenF1": token_f1(prediction, reference),
            "rougeL": rouge_l(prediction, reference)}


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
