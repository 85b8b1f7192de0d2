"""What `kubetune quickstart` prints from an EvalJob's status: every baseline with its
interval, the comparison with the strongest, calibration, leakage and a plain verdict."""

from __future__ import annotations

import copy

from kubetune.local.quickstart import beats_baseline, result_lines, training_lines

STATUS = {
    "samples": 240,
    "results": [
        {"name": "f1", "value": 0.962, "ciLow": 0.938, "ciHigh": 0.983, "baseline": 0.925,
         "baselineName": "probe", "delta": 0.037, "deltaCiLow": 0.012, "deltaCiHigh": 0.063,
         "passed": True},
        {"name": "accuracy", "value": 0.963, "ciLow": 0.938, "ciHigh": 0.983},
    ],
    "baselines": [
        {"name": "majority", "metrics": [{"name": "f1", "value": 0.069, "ciLow": 0.055,
                                          "ciHigh": 0.083}]},
        {"name": "probe", "metrics": [{"name": "f1", "value": 0.925, "ciLow": 0.888,
                                       "ciHigh": 0.956}]},
        {"name": "chance", "metrics": [{"name": "f1", "value": 0.16}]},
    ],
    "calibration": {"ece": 0.031, "brier": 0.062},
    "conditions": [
        {"type": "Passed", "status": "True", "message": "all hold: f1 beats probe significantly"},
        {"type": "LeakageDetected", "status": "False",
         "message": "no evaluation example copies or nearly copies a training row"},
    ],
}


def test_every_baseline_interval_calibration_leakage_and_the_verdict_are_printed():
    text = "\n".join(result_lines(STATUS))
    # Each baseline's full label, then its figures in the same column as the finetune's.
    lines = text.splitlines()
    finetuned = next(line for line in lines if "finetuned MiniLM" in line)
    column = finetuned.index("0.962 [0.938, 0.983]")
    for label, figure in [("majority (most frequent label)", "0.069 [0.055, 0.083]"),
                          ("probe (frozen MiniLM + logistic regression)", "0.925 [0.888, 0.956]"),
                          ("chance (untrained head: not a baseline)", None)]:
        line = next(line for line in lines if label in line)
        if figure:
            assert line.index(figure) == column, line
    assert "f1 vs strongest baseline (probe): delta +0.037 [+0.012, +0.063]" in text
    assert "calibration: ECE 0.031 (15 bins), Brier 0.062" in text
    assert "leakage check: no evaluation example copies" in text
    assert "Verdict: the finetuned model beats the strongest baseline (probe)" in text


def test_a_higher_value_without_a_significant_delta_is_not_claimed_as_a_win():
    status = copy.deepcopy(STATUS)
    status["results"][0].update(deltaCiLow=-0.004)
    assert not beats_baseline(status)
    assert "does NOT beat the strongest baseline (probe) significantly" in \
        "\n".join(result_lines(status))


def test_training_health_is_printed_kept_step_plateau_and_overfitting():
    training = {"result": {"keptStep": 135, "evalLoss": 0.2034, "evalAccuracy": 0.95,
                           "stoppedEarly": False},
                "progress": {"totalSteps": 135},
                "conditions": [{"type": "Plateau", "status": "True",
                                "message": "evalLoss has not improved by more than 1% for 3 "
                                           "evaluations, since step 45"}]}
    text = "\n".join(training_lines(training))
    assert "kept the weights of step 135 of 135" in text and "0.203" in text
    assert "plateau: evalLoss has not improved by more than 1% for 3 evaluations" in text
    assert "overfitting: no overfitting seen" in text
