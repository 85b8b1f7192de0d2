"""Training health: smoothed loss, divergence fails fast, overfitting warns, and the saved
weights are the best evaluated ones."""

from __future__ import annotations

import json
import math

import pytest
from kubetune_trainer import cli, health

from .helpers import make_config


def test_the_smoothed_loss_follows_the_trend_not_one_batch():
    smoothed = None
    for loss in [2.0, 2.0, 9.0, 2.0]:
        smoothed = health.ema(smoothed, loss)
    assert smoothed == pytest.approx(0.9 * (0.9 * 2.0 + 0.1 * 9.0) + 0.1 * 2.0)
    assert smoothed < 3.0  # one noisy batch does not move it far


@pytest.mark.parametrize(("loss", "smoothed", "step", "diverged"), [
    (math.nan, 1.0, 3, True), (math.inf, 1.0, 3, True),
    (50.0, 7.0, 20, True),  # smoothed 3.5x the first loss, past the warm-up
    (50.0, 7.0, 5, False),  # the same, during the first steps: warm-up may spike
    (2.5, 2.2, 40, False),  # noisy but not above 3x the start
])
def test_divergence_is_a_non_finite_or_exploding_smoothed_loss(loss, smoothed, step, diverged):
    assert (health.divergence(loss, smoothed, 2.0, step) is not None) is diverged


def test_overfitting_is_eval_loss_rising_while_train_loss_falls_with_the_numbers():
    history = [{"step": 10 * i, "evalLoss": e, "trainLoss": t} for i, (e, t) in enumerate(
        [(0.50, 0.9), (0.40, 0.6), (0.42, 0.4), (0.45, 0.3), (0.49, 0.2)], start=1)]
    message = health.overfitting(history)
    assert message == ("eval loss rose 3 evaluations in a row (0.4000 at step 20 -> 0.4900 at "
                       "step 50) while the train loss fell (0.6000 -> 0.2000)")
    assert health.overfitting(history[:4]) is None  # only two rises so far
    both_rising = [{**h, "trainLoss": 1.0 + i} for i, h in enumerate(history)]
    assert health.overfitting(both_rising) is None  # that is divergence, not memorising


def _evals(values, metric="evalLoss"):
    return [{"step": 10 * i, metric: v} for i, v in enumerate(values, start=1)]


def test_a_plateau_is_three_evaluations_without_a_one_percent_gain_with_the_numbers():
    # 0.50 -> 0.40 is a real gain (step 20); then 0.399, 0.398, 0.397: each under 1% of 0.40.
    history = _evals([0.50, 0.40, 0.399, 0.398, 0.397])
    assert health.plateau(history) == {"metric": "evalLoss", "sinceStep": 20, "evals": 3,
                                       "value": 0.4, "best": 0.397, "latest": 0.397}
    assert health.plateau(history[:4]) is None  # two evaluations are not yet a plateau
    message = health.plateau_message(health.plateau(history))
    assert "since step 20" in message and "0.4000 then" in message and "1%" in message


def test_small_gains_that_add_up_past_the_margin_end_the_plateau():
    # Each step gains 0.6% of the last, but 0.40 -> 0.3952 is 1.2% of the reference: a gain.
    assert health.plateau(_evals([0.40, 0.3976, 0.3952, 0.3950, 0.3949])) is None
    # A real gain after a plateau starts the count again from that step.
    found = health.plateau(_evals([0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3]))
    assert (found["sinceStep"], found["evals"]) == (50, 3)


def test_a_rising_loss_is_a_plateau_too_and_accuracy_counts_upwards():
    assert health.plateau(_evals([0.4, 0.45, 0.5, 0.6]))["best"] == 0.4
    accuracy = _evals([0.80, 0.90, 0.905, 0.903, 0.906], "evalAccuracy")
    found = health.plateau(accuracy, "evalAccuracy", higher_is_better=True)
    assert (found["sinceStep"], found["best"], found["latest"]) == (20, 0.906, 0.906)
    # Read as a loss (lower is better), the same numbers never improve after the first.
    assert health.plateau(accuracy, "evalAccuracy")["sinceStep"] == 10


def test_a_diverging_run_fails_fast_with_reason_diverged_and_exit_2(tmp_path, tiny_lm,
                                                                    colour_data):
    config = make_config(tiny_lm, f"file://{colour_data}", tmp_path / "out",
                         method={"type": "full"},
                         hyperparameters={"learningRate": 1.0, "maxSteps": 200,
                                          "evalEverySteps": 0, "epochs": 0})
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    assert cli.main(["--config", str(path)]) == 2
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (message["phase"], message["reason"]) == ("Failed", "Diverged")
    assert "learningRate" in message["message"]
    assert message["step"] < 200  # failed fast, not at the end


@pytest.mark.slow
def test_the_saved_weights_are_the_best_evaluations_not_the_last(tmp_path, tiny_lm, colour_data):
    """Early stopping ends `patience` evaluations after the best; the saved model must be the
    best one: here identical to a run that stopped right at the best step."""
    from safetensors.torch import load_file

    from .helpers import load

    def run(out, **hyper):
        from kubetune_trainer.recipe import FinetuneRecipe

        config = make_config(tiny_lm, f"file://{colour_data}", out, method={"type": "full"},
                             hyperparameters={"lrScheduler": "constant", "warmupRatio": 0.0,
                                              "learningRate": 0.001, "packing": False,
                                              "epochs": 0, **hyper})
        return FinetuneRecipe(load(config), serve_progress=False).run()

    # minDelta 100: the first evaluation (step 2) is the best; two more stop the run at step 6.
    stopped = run(tmp_path / "stopped", maxSteps=12, evalEverySteps=2,
                  earlyStopping={"patience": 2, "metric": "evalLoss", "minDelta": 100.0})
    assert stopped["step"] == 6
    assert stopped["result"]["stoppedEarly"] is True and stopped["result"]["keptStep"] == 2
    exact = run(tmp_path / "exact", maxSteps=2, evalEverySteps=2)
    assert exact["result"]["keptStep"] == 2
    kept = load_file(str(tmp_path / "stopped" / "model" / "model.safetensors"))
    reference = load_file(str(tmp_path / "exact" / "model" / "model.safetensors"))
    assert kept.keys() == reference.keys()
    assert all((kept[name] == reference[name]).all() for name in kept)
    history = json.loads((tmp_path / "stopped" / "result.json").read_text())["evalHistory"]
    assert [h["step"] for h in history] == [2, 4, 6]
    assert stopped["result"]["evalLoss"] == pytest.approx(history[0]["evalLoss"], abs=1e-6)
    card = (tmp_path / "stopped" / "README.md").read_text()
    assert "## Evaluation during training" in card and "| 2 |" in card and "kept" in card
    report = json.loads((tmp_path / "stopped" / "data-report.json").read_text())
    assert [h["step"] for h in report["evalHistory"]] == [2, 4, 6]


@pytest.mark.slow
def test_a_run_on_a_plateau_reports_it_live_and_in_the_result_card_and_reports(
        tmp_path, tiny_lm, colour_data):
    """A learning rate too small to move the weights: the eval loss stays flat, so the plateau
    is noted from the first evaluation on, served on /progress and written with the result."""
    from kubetune_trainer.recipe import FinetuneRecipe

    from .helpers import load

    config = make_config(tiny_lm, f"file://{colour_data}", tmp_path / "out",
                         method={"type": "full"},
                         hyperparameters={"lrScheduler": "constant", "warmupRatio": 0.0,
                                          "learningRate": 1e-12, "packing": False, "epochs": 0,
                                          "maxSteps": 8, "evalEverySteps": 2})
    recipe = FinetuneRecipe(load(config), serve_progress=False)
    summary = recipe.run()
    plateau = summary["result"]["plateau"]
    assert (plateau["metric"], plateau["sinceStep"], plateau["evals"]) == ("evalLoss", 2, 3)
    assert recipe.progress.snapshot()["plateau"] == plateau  # what the operator polls
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    report = json.loads((tmp_path / "out" / "data-report.json").read_text())
    assert result["plateau"] == report["plateau"] == plateau
    assert "Plateau: evalLoss has not improved by more than 1% for 3 evaluations, since step 2" \
        in (tmp_path / "out" / "README.md").read_text()
