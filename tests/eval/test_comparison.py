"""Comparison rows, thresholds, error analysis, batching and the 4 KiB summary (pure code)."""

from __future__ import annotations

import json

import numpy as np
from kubetune_trainer.eval import analysis
from kubetune_trainer.eval.batching import length_sorted_batches, scatter
from kubetune_trainer.eval.compare import comparison_rows, overall_passed, unmet_thresholds
from kubetune_trainer.eval.metrics import confusion_matrix, per_class_scores
from kubetune_trainer.eval.summary import LIMIT_BYTES, fit, size


def test_rows_carry_value_baseline_delta_threshold_and_passed():
    rows = comparison_rows(["f1", "accuracy"], {"f1": 0.91, "accuracy": 0.93},
                           {"f1": 0.62, "accuracy": 0.7}, {"f1": 0.85})
    assert rows == [
        {"name": "f1", "value": 0.91, "baseline": 0.62, "delta": 0.29, "threshold": 0.85,
         "passed": True},
        {"name": "accuracy", "value": 0.93, "baseline": 0.7, "delta": 0.23},
    ]
    assert overall_passed(rows, {"f1": 0.85}) is True


def test_a_threshold_that_does_not_hold_fails_the_whole_evaluation():
    rows = comparison_rows(["f1", "accuracy"], {"f1": 0.8, "accuracy": 0.95}, None,
                           {"f1": 0.85, "accuracy": 0.9})
    assert [row["passed"] for row in rows] == [False, True]
    assert overall_passed(rows, {"f1": 0.85, "accuracy": 0.9}) is False
    assert unmet_thresholds(rows, {"f1": 0.85, "accuracy": 0.9}) == ["f1 0.8 is not >= 0.85"]


def test_loss_thresholds_are_ceilings():
    rows = comparison_rows(["loss", "perplexity"], {"loss": 1.2, "perplexity": 3.3}, None,
                           {"loss": 1.5, "perplexity": 3.0})
    assert [row["passed"] for row in rows] == [True, False]
    assert unmet_thresholds(rows, {"loss": 1.5, "perplexity": 3.0}) == [
        "perplexity 3.3 is not <= 3"]


def test_no_thresholds_means_passed_is_null_and_an_unmeasured_one_fails():
    rows = comparison_rows(["loss"], {"loss": 1.0}, None, {})
    assert overall_passed(rows, {}) is None
    assert overall_passed(rows, {"tokenF1": 0.5}) is False
    assert unmet_thresholds(rows, {"tokenF1": 0.5}) == ["tokenF1 was not computed"]


def test_non_finite_values_never_reach_the_status():
    rows = comparison_rows(["loss", "perplexity"], {"loss": float("nan"), "perplexity": 2.0},
                           {"perplexity": float("inf")}, {})
    assert rows == [{"name": "perplexity", "value": 2.0}]


def test_top_confusions_and_worst_classes():
    labels = ["billing", "delivery", "product"]
    truth = [0] * 10 + [1] * 10 + [2] * 4
    guess = [0] * 7 + [1] * 3 + [1] * 8 + [2] * 2 + [0] * 4
    matrix = confusion_matrix(truth, guess, 3)
    assert analysis.top_confusions(matrix, labels, 2) == [
        {"label": "product", "predicted": "billing", "count": 4},
        {"label": "billing", "predicted": "delivery", "count": 3},
    ]
    worst = analysis.worst_classes(per_class_scores(matrix), labels, 10)
    assert [w["label"] for w in worst] == ["product", "billing", "delivery"]
    assert worst[0]["f1"] == 0.0


def test_lowest_scoring_answers_come_first():
    records = [{"line": 1, "tokenF1": 0.9, "loss": 1.0}, {"line": 2, "tokenF1": 0.1, "loss": 2.0},
               {"line": 3, "tokenF1": 0.1, "loss": 5.0}]
    assert [r["line"] for r in analysis.lowest_scoring(records, 2)] == [3, 2]


def test_batches_are_length_sorted_bounded_and_cover_every_example_once():
    lengths = [5, 50, 7, 49, 6, 51, 8, 200]
    batches = length_sorted_batches(lengths, max_items=3, max_tokens=160)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [7]  # longer than the token budget: a batch of its own
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 160
    widths = [max(lengths[i] for i in batch) for batch in batches]
    assert widths == sorted(widths, reverse=True)
    results = [[lengths[i] * 10 for i in batch] for batch in batches]
    assert scatter(batches, results, len(lengths)) == [n * 10 for n in lengths]


def test_summary_stays_under_4_kib_with_1000_long_class_names():
    rng = np.random.default_rng(0)
    labels = [f"class-{i:04d}-" + "é" * 240 for i in range(1000)]  # non-ASCII: 6 bytes in JSON
    truth = rng.integers(0, 1000, 5000)
    guess = np.where(rng.random(5000) < 0.5, truth, rng.integers(0, 1000, 5000))
    matrix = confusion_matrix(truth, guess, 1000)
    error_analysis = analysis.status_summary(
        analysis.top_confusions(matrix, labels, 10),
        analysis.worst_classes(per_class_scores(matrix), labels, 10))
    summary = {"phase": "Succeeded", "reason": "Completed", "message": "x" * 5000,
               "samples": 5000, "passed": None, "reportUri": "s3://bucket/" + "p" * 2000,
               "results": [{"name": n, "value": 0.5, "baseline": 0.25, "delta": 0.25,
                            "threshold": 0.4, "passed": True}
                           for n in ("accuracy", "precision", "recall", "f1")],
               "errorAnalysis": error_analysis, "dropped": {"unknown label": 3}}
    assert size(summary) > LIMIT_BYTES
    fitted = fit(summary)
    assert size(fitted) < LIMIT_BYTES
    text = json.dumps(fitted, separators=(",", ":"))
    assert json.loads(text)["results"] == summary["results"]  # the numbers always survive
    assert len(fitted["errorAnalysis"]["confusion"]) >= 3
    assert "passed" not in fitted  # null is left out
