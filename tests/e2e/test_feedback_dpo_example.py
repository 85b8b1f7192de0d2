"""examples/feedback-dpo through the local cluster, as the README runs it: the model built by
the example's own script into the examples claim, the FinetuneJob (DPO on feedback.jsonl) and
the EvalJob applied unchanged (only the namespace differs), offline on CPU. The win rate of
chosen over rejected answers rises from the base model's to the adapter's."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from tests.operator.cluster import condition

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_feedback_dpo_example_raises_the_win_rate_over_the_base(api, cluster, repo_root):
    example = repo_root / "examples" / "feedback-dpo"
    spec = importlib.util.spec_from_file_location("make_model", example / "make_model.py")
    make_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_model)
    claim = cluster.workdir / "pvcs" / "team-a" / "kubetune-examples"
    make_model.build_model(claim / "feedback-dpo" / "model")

    docs = [yaml.safe_load((example / name).read_text())
            for name in ("finetunejob.yaml", "evaljob.yaml")]
    for doc in docs:
        doc["metadata"]["namespace"] = "team-a"  # the test cluster's namespace
        # The test cluster's models claim is "models".
        output = doc["spec"]["output"]
        output["uri"] = output["uri"].replace("pvc://kubetune-models/", "pvc://models/")
        api.create(doc)

    seen = api.wait_status("FinetuneJob", "feedback-dpo", lambda s: s.get("phase") in (
        "Succeeded", "Failed") or "rewardAccuracy" in (s.get("progress") or {}), timeout=300)
    assert seen.get("phase") != "Failed", seen.get("failure")
    status = api.wait_status("FinetuneJob", "feedback-dpo", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=600)
    assert status["phase"] == "Succeeded", status.get("failure")
    result = status["result"]
    assert result["adapterUri"] == "pvc://models/feedback-dpo/adapter"
    assert result["evalRewardAccuracy"] >= 0.8 and result["rewardMargin"] > 0

    evaluation = api.wait_status("EvalJob", "feedback-dpo-eval", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=400)
    assert evaluation["phase"] == "Succeeded", evaluation.get("failure")
    row = next(r for r in evaluation["results"] if r["name"] == "winRate")
    assert row["baselineName"] == "base" and row["value"] >= 0.8 > row["baseline"]
    assert row["deltaCiLow"] > 0
    assert condition({"status": evaluation}, "Passed")["status"] == "True"
