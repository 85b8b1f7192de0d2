"""Comparison rows, thresholds, error analysis, batching and the 4 KiB summary (pure code)."""

from __future__ import annotations

import json

import numpy as np
from kubetune.api.metrics import Gate
from kubetune_trainer.eval import analysis
from kubetune_trainer.eval.batching import length_sorted_batches, scatter
from kubetune_trainer.eval.bootstrap import Paired, distributions, interval, paired
from kubetune_trainer.eval.compare import comparison_rows, overall_passed, unmet_thresholds
from kubetune_trainer.eval.metrics import confusion_matrix, per_class_scores
from kubetune_trainer.eval.summary import LIMIT_BYTES, fit, size


def test_rows_carry_value_the_strongest_baseline_delta_threshold_and_passed():
    baselines = {"majority": {"f1": 0.07, "accuracy": 0.3}, "tfidf": {"f1": 0.62, "accuracy": 0.7},
                 "chance": {"f1": 0.95, "accuracy": 0.95}}
    rows = comparison_rows(["f1", "accuracy"], {"f1": 0.91, "accuracy": 0.93}, baselines,
                           {"f1": 0.85}, eligible=["majority", "tfidf"])
    # chance is reported elsewhere but never the bar: here it would have been the strongest.
    assert rows == [
        {"name": "f1", "value": 0.91, "baseline": 0.62, "baselineName": "tfidf", "delta": 0.29,
         "threshold": 0.85, "passed": True},
        {"name": "accuracy", "value": 0.93, "baseline": 0.7, "baselineName": "tfidf",
         "delta": 0.23},
    ]
    assert overall_passed(rows, {"f1": 0.85}) is True


def test_the_strongest_baseline_is_chosen_per_metric_lowest_for_loss():
    baselines = {"a": {"loss": 2.0, "tokenF1": 0.5}, "b": {"loss": 1.5, "tokenF1": 0.4}}
    rows = comparison_rows(["loss", "tokenF1"], {"loss": 1.0, "tokenF1": 0.6}, baselines, {})
    assert [(r["name"], r["baselineName"], r["delta"]) for r in rows] == [
        ("loss", "b", -0.5), ("tokenF1", "a", 0.1)]


def test_a_threshold_that_does_not_hold_fails_the_whole_evaluation():
    rows = comparison_rows(["f1", "accuracy"], {"f1": 0.8, "accuracy": 0.95}, {},
                           {"f1": 0.85, "accuracy": 0.9})
    assert [row["passed"] for row in rows] == [False, True]
    assert overall_passed(rows, {"f1": 0.85, "accuracy": 0.9}) is False
    assert unmet_thresholds(rows, {"f1": 0.85, "accuracy": 0.9}) == ["f1 0.8 is not >= 0.85"]


def test_loss_thresholds_are_ceilings():
    rows = comparison_rows(["loss", "perplexity"], {"loss": 1.2, "perplexity": 3.3}, {},
                           {"loss": 1.5, "perplexity": 3.0})
    assert [row["passed"] for row in rows] == [True, False]
    assert unmet_thresholds(rows, {"loss": 1.5, "perplexity": 3.0}) == [
        "perplexity 3.3 is not <= 3"]


def test_no_thresholds_means_passed_is_null_and_an_unmeasured_one_fails():
    rows = comparison_rows(["loss"], {"loss": 1.0}, {}, {})
    assert overall_passed(rows, {}) is None
    assert overall_passed(rows, {"tokenF1": 0.5}) is False
    assert unmet_thresholds(rows, {"tokenF1": 0.5}) == ["tokenF1 was not computed"]


def test_non_finite_values_never_reach_the_status():
    rows = comparison_rows(["loss", "perplexity"], {"loss": float("nan"), "perplexity": 2.0},
                           {"x": {"perplexity": float("inf")}}, {})
    assert rows == [{"name": "perplexity", "value": 2.0}]


def _samples(center: float, spread: float) -> np.ndarray:
    return center + spread * np.linspace(-1, 1, 1001)


def test_beat_baseline_needs_the_paired_delta_interval_above_zero():
    """beatBaseline holds when deltaCiLow > 0, not merely when the model's value is higher."""
    gate = {"f1": Gate(beat_baseline=True)}
    values, base = {"f1": 0.95}, {"probe": {"f1": 0.92}}
    clear = Paired({"f1": _samples(0.95, 0.02)}, {"probe": {"f1": _samples(0.92, 0.0)}})
    rows = comparison_rows(["f1"], values, base, gate, clear)
    assert rows[0]["deltaCiLow"] > 0 and rows[0]["passed"] is True
    assert overall_passed(rows, gate) is True
    # Same point estimates, a wider interval that includes 0: a higher value is not enough.
    noisy = Paired({"f1": _samples(0.95, 0.05)}, {"probe": {"f1": _samples(0.92, 0.0)}})
    rows = comparison_rows(["f1"], values, base, gate, noisy)
    assert rows[0]["deltaCiLow"] < 0 < rows[0]["delta"]
    assert rows[0]["passed"] is False and overall_passed(rows, gate) is False
    assert unmet_thresholds(rows, gate)[0].startswith("f1 does not beat probe significantly")


def test_beat_baseline_and_a_value_must_both_hold_and_loss_needs_the_upper_end_below_zero():
    gate = {"loss": Gate(value=2.0, beat_baseline=True)}
    dists = Paired({"loss": _samples(1.0, 0.1)}, {"base": {"loss": _samples(1.5, 0.0)}})
    rows = comparison_rows(["loss"], {"loss": 1.0}, {"base": {"loss": 1.5}}, gate, dists)
    assert rows[0]["deltaCiHigh"] < 0 and rows[0]["passed"] is True
    assert rows[0]["threshold"] == 2.0
    rows = comparison_rows(["loss"], {"loss": 1.0}, {"base": {"loss": 1.5}},
                           {"loss": Gate(value=0.5, beat_baseline=True)}, dists)
    assert rows[0]["passed"] is False


def test_beat_baseline_without_any_baseline_fails():
    gate = {"f1": Gate(beat_baseline=True)}
    rows = comparison_rows(["f1"], {"f1": 0.99}, {}, gate)
    assert overall_passed(rows, gate) is False
    assert unmet_thresholds(rows, gate) == ["f1: no baseline was scored to beat"]


def test_paired_bootstrap_intervals_are_seeded_and_paired():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 300)
    model = np.where(rng.random(300) < 0.9, truth, (truth + 1) % 3)
    # The baseline is the model with 15 extra mistakes: a small but consistent difference.
    baseline = model.copy()
    baseline[np.flatnonzero(model == truth)[:15]] = (truth[np.flatnonzero(model == truth)[:15]]
                                                     + 1) % 3
    stat = lambda p: (lambda i: {"accuracy": float((p[i] == truth[i]).mean())})  # noqa: E731
    first = distributions({"model": stat(model), "baseline": stat(baseline)}, 300)
    again = distributions({"model": stat(model), "baseline": stat(baseline)}, 300)
    assert np.array_equal(first["model"]["accuracy"], again["model"]["accuracy"])
    paired = interval(first["model"]["accuracy"] - first["baseline"]["accuracy"])
    low, high = interval(first["model"]["accuracy"])
    assert paired[0] > 0  # every resample has the same 15 more right
    # Unpaired, the two intervals overlap: only pairing shows the difference is real.
    assert interval(first["baseline"]["accuracy"])[1] > low
    assert low < float((model == truth).mean()) < high


def test_a_baseline_named_model_is_compared_with_the_model_not_with_itself():
    """The user's baseline.uri model is named `model`: its samples must not replace the
    model's, or every delta is the baseline minus itself (interval [0, 0])."""
    from kubetune_trainer.eval.harness.results import MetricScores, TaskScores, task_rows

    rng = np.random.default_rng(2)
    mine = (rng.random(200) < 0.8).astype(float)
    theirs = (rng.random(200) < 0.5).astype(float)

    def scores(items: np.ndarray) -> TaskScores:
        acc = MetricScores(float(items.mean()), items.tolist(), np.mean, is_mean=True)
        return TaskScores("animals", 0, list(range(200)), {"acc": acc})

    row, = task_rows(scores(mine), {"model": scores(theirs)})
    assert row["baselineName"] == "model"
    assert row["ciLow"] < row["value"] == mine.mean() < row["ciHigh"]
    assert row["deltaCiLow"] > 0.15 and row["deltaCiHigh"] > row["deltaCiLow"]
    # paired() draws the same resamples as distributions() under names that cannot collide.
    stat = lambda items: (lambda i: {"acc": float(items[i].mean())})  # noqa: E731
    samples = paired(stat(mine), {"model": stat(theirs)}, 200)
    named = distributions({"mine": stat(mine), "theirs": stat(theirs)}, 200)
    assert np.array_equal(samples.model["acc"], named["mine"]["acc"])
    assert np.array_equal(samples.baselines["model"]["acc"], named["theirs"]["acc"])


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


def test_a_full_summary_shrinks_baselines_before_the_numbers_passed_depends_on():
    row = {"value": 0.951234, "ciLow": 0.931234, "ciHigh": 0.971234, "baseline": 0.921234,
           "baselineName": "zero-shot", "delta": 0.031234, "deltaCiLow": 0.011234,
           "deltaCiHigh": 0.051234, "threshold": 0.85, "passed": True}
    summary = {
        "phase": "Succeeded", "reason": "Completed", "message": "m" * 3000, "samples": 240,
        "headline": "f1",
        "results": [{"name": name, **row} for name in ("accuracy", "precision", "recall", "f1")],
        "baselines": [{"name": name, "metrics": [
            {"name": metric, "value": 0.512345, "ciLow": 0.412345, "ciHigh": 0.612345}
            for metric in ("accuracy", "precision", "recall", "f1")]}
            for name in ("majority", "tfidf", "probe", "zero-shot", "chance", "model")],
        "calibration": {"ece": 0.03, "brier": 0.08}, "leakage": {"exact": 0, "nearDuplicates": 0},
        "reportUri": "s3://bucket/" + "p" * 600 + "/report.json",
        "errorAnalysis": {"confusion": [{"label": "x" * 200, "predicted": "y" * 200,
                                         "count": 3}] * 10,
                          "worstClasses": [{"label": "z" * 200, "f1": 0.1}] * 10},
    }
    fitted = fit(summary)
    assert size(fitted) < LIMIT_BYTES
    assert [b["name"] for b in fitted["baselines"]] == ["majority", "tfidf", "probe", "zero-shot",
                                                        "chance", "model"]
    for result in fitted["results"]:
        assert {"value", "baselineName", "deltaCiLow", "deltaCiHigh"} <= result.keys()
    # The baselines' intervals go before the error analysis does (the report has them all).
    assert "errorAnalysis" in fitted
    assert all(m.keys() == {"name", "value"} for b in fitted["baselines"] for m in b["metrics"])
