"""The metric functions agree with scikit-learn and with the definitions they name."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kubetune_trainer.eval.metrics import (
    AVERAGES,
    classification_metrics,
    confusion_matrix,
    exact_match,
    normalise_answer,
    per_class_scores,
    perplexity,
    rouge_l,
    token_f1,
)
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix


def predictions(seed: int, classes: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Skewed labels, a mostly-right predictor, one class never predicted, one never true."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(classes - 1, size=count, p=_skew(classes - 1))  # last class never true
    guess = np.where(rng.random(count) < 0.6, truth, rng.integers(0, classes, count))
    guess[guess == 0] = 1  # class 0 is never predicted
    return truth, guess


def _skew(n: int) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=float)
    return weights / weights.sum()


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_averaged_metrics_agree_with_scikit_learn(average, seed):
    truth, guess = predictions(seed, classes=7, count=300)
    ours = classification_metrics(confusion_matrix(truth, guess, 7), average)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, guess, average=average, zero_division=0)
    assert ours["accuracy"] == pytest.approx(accuracy_score(truth, guess), abs=1e-12)
    assert ours["precision"] == pytest.approx(precision, abs=1e-12)
    assert ours["recall"] == pytest.approx(recall, abs=1e-12)
    assert ours["f1"] == pytest.approx(f1, abs=1e-12)


def test_per_class_scores_and_confusion_matrix_agree_with_scikit_learn():
    truth, guess = predictions(3, classes=6, count=200)
    matrix = confusion_matrix(truth, guess, 6)
    np.testing.assert_array_equal(matrix, sk_confusion_matrix(truth, guess, labels=range(6)))
    scores = per_class_scores(matrix)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guess, labels=range(6), average=None, zero_division=0)
    np.testing.assert_allclose(scores.precision, precision, atol=1e-12)
    np.testing.assert_allclose(scores.recall, recall, atol=1e-12)
    np.testing.assert_allclose(scores.f1, f1, atol=1e-12)
    np.testing.assert_array_equal(scores.support, support)


def test_macro_average_ignores_classes_neither_true_nor_predicted():
    # The model knows 10 classes; the data and the predictions use 2 of them.
    matrix = confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], 10)
    assert classification_metrics(matrix, "macro")["recall"] == pytest.approx((0.5 + 1) / 2)


def test_perfect_and_hopeless_predictions():
    perfect = classification_metrics(confusion_matrix([0, 1, 2], [0, 1, 2], 3), "macro")
    assert perfect == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    hopeless = classification_metrics(confusion_matrix([0, 1, 2], [1, 2, 0], 3), "weighted")
    assert hopeless == {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_unknown_average_is_an_error():
    with pytest.raises(ValueError, match="average"):
        classification_metrics(confusion_matrix([0], [0], 2), "samples")


def test_answer_normalisation_is_squad_style():
    assert normalise_answer("The  Cat, sat!") == "cat sat"
    assert exact_match("the cat sat.", "Cat sat") == 1.0
    assert exact_match("a dog", "the cat") == 0.0


def test_token_f1_counts_shared_tokens_as_a_bag():
    # prediction "cat cat dog" vs reference "cat bird": 1 shared, P = 1/3, R = 1/2
    assert token_f1("cat cat dog", "cat bird") == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    assert token_f1("the cat", "a cat") == 1.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "cat") == 0.0
    assert token_f1("dog", "cat") == 0.0


def test_rouge_l_is_the_longest_common_subsequence_f_measure():
    # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l("same words", "same words") == 1.0
    assert rouge_l("", "") == 1.0
    assert rouge_l("", "cat") == 0.0


def test_perplexity_is_exp_of_the_mean_token_loss():
    assert perplexity(6.0, 3) == pytest.approx(math.exp(2.0))
    assert math.isfinite(perplexity(1e9, 1))  # capped, never inf in a JSON status
    with pytest.raises(ValueError):
        perplexity(1.0, 0)
