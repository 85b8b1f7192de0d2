"""A MiniLM finetuned by the trainer beats its base model on held-out data, and the
evaluation says so: the real models, the quickstart data, the trainer's own training run."""

from __future__ import annotations

import json

import pytest
from kubetune_trainer.eval.recipe import evaluate

from .conftest import QUICKSTART_DATA
from .helpers import classification_config, load


def finetune_minilm(minilm, output_dir):
    """LoRA on MiniLM for 20 steps of 16 examples: minutes on two busy CPU cores at most."""
    from kubetune.api import FinetuneJobSpec, trainer_config_for
    from kubetune_trainer.recipe import FinetuneRecipe

    spec = FinetuneJobSpec.model_validate({
        "model": {"uri": f"file://{minilm}", "task": "sequence-classification"},
        "dataset": {"uri": f"file://{QUICKSTART_DATA / 'train.jsonl'}"},
        "method": {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0,
                                            "targetModules": ["all-linear"]}},
        "hyperparameters": {"epochs": 0, "maxSteps": 20, "learningRate": 3e-3, "batchSize": 16,
                            "maxSeqLength": 40, "lrScheduler": "linear", "warmupRatio": 0.1,
                            "evalEverySteps": 0, "seed": 7},
        "output": {"uri": f"file://{output_dir}", "mergeAdapter": True},
        "checkpointing": {"everySteps": 0},
        "resources": {"gpus": 0},
    })
    summary = FinetuneRecipe(trainer_config_for("quickstart", "default", spec),
                             serve_progress=False).run()
    assert summary["phase"] == "Succeeded", summary
    return output_dir


@pytest.mark.slow
def test_a_finetuned_minilm_beats_its_base_and_the_comparison_says_so(minilm, tmp_path):
    trained = finetune_minilm(minilm, tmp_path / "train")
    test_set = f"file://{QUICKSTART_DATA / 'test.jsonl'}"
    # The adapter folder, as a FinetuneJob without mergeAdapter leaves it, on its base model.
    config = load(classification_config(
        f"file://{trained / 'adapter'}", test_set, tmp_path / "eval",
        model={"uri": f"file://{trained / 'adapter'}", "baseUri": f"file://{minilm}"},
        baseline={"uri": f"file://{minilm}"}, thresholds={"f1": 0.5, "accuracy": 0.5}))
    summary = evaluate(config)

    rows = {row["name"]: row for row in summary["results"]}
    chance = {m["name"]: m["value"] for entry in summary["baselines"] if entry["name"] == "chance"
              for m in entry["metrics"]}
    assert summary["samples"] == 240
    assert rows["f1"]["value"] >= chance["f1"] + 0.3, (rows["f1"], chance)
    assert rows["accuracy"]["value"] >= chance["accuracy"] + 0.3
    # The untrained head is scored and reported, but never made the bar to beat.
    assert "baseline" not in rows["f1"] and "delta" not in rows["f1"]
    assert rows["f1"]["passed"] is True and summary["passed"] is True
    assert len(summary["errorAnalysis"]["worstClasses"]) == 5

    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    base_f1 = report["metrics"]["baselines"]["chance"]["f1"]
    assert base_f1 == pytest.approx(chance["f1"], abs=1e-4)  # the summary rounds
    assert base_f1 < 0.4  # an untrained head is near chance (0.2 for five balanced classes)

    # The merged copy the trainer also wrote scores the same as the adapter on its base (to
    # within an argmax flip or two from float rounding).
    merged = load(classification_config(f"file://{trained / 'merged'}", test_set))
    merged_f1 = {row["name"]: row["value"] for row in evaluate(merged)["results"]}["f1"]
    assert merged_f1 == pytest.approx(rows["f1"]["value"], abs=0.01)
