"""The classification FinetuneJob with evaluation: the EvalJob scores every cheap baseline on
the FinetuneJob's own training data and compares the finetune with the strongest."""

from __future__ import annotations

import copy

import pytest
import yaml

pytestmark = pytest.mark.e2e


def test_classification_with_evaluation_beats_the_baseline(api, cluster, repo_root):
    doc = yaml.safe_load((repo_root / "examples" / "quickstart" / "finetunejob.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = "team-a"
    # The quickstart's recipe, shortened for CI: one epoch, 120 test messages.
    doc["spec"]["hyperparameters"]["epochs"] = 1
    doc["spec"]["output"]["uri"] = "pvc://models/feedback-router"
    doc["spec"]["evaluation"]["dataset"]["limit"] = 120
    api.create(doc)
    status = api.wait_status("FinetuneJob", "feedback-router", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=400)
    assert status["phase"] == "Succeeded", status.get("failure")
    assert status["plan"]["parameters"] == 22_713_216 + 384 * 5 + 5  # MiniLM + 5-way head
    evaluation = api.wait_status("EvalJob", status["evalJobName"], lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=300)
    assert evaluation["phase"] == "Succeeded", evaluation.get("failure")
    f1 = next(r for r in evaluation["results"] if r["name"] == "f1")
    assert evaluation["samples"] == 120
    baselines = {b["name"]: {m["name"]: m for m in b["metrics"]} for b in evaluation["baselines"]}
    assert set(baselines) == {"majority", "tfidf", "probe", "zero-shot", "chance"}
    # The untrained head is far behind, but it is not the bar: the strongest cheap one is.
    assert f1["value"] > baselines["chance"]["f1"]["value"] + 0.3, f1
    assert f1["baselineName"] in {"tfidf", "probe"}, f1
    assert f1["deltaCiLow"] <= f1["delta"] <= f1["deltaCiHigh"]
    assert f1["ciLow"] <= f1["value"] <= f1["ciHigh"]
    assert set(evaluation["calibration"]) == {"ece", "brier"}
    leakage = next(c for c in evaluation["conditions"] if c["type"] == "LeakageDetected")
    assert (leakage["status"], leakage["reason"]) == ("False", "NoOverlap")
