"""spec.benchmarks through the local cluster: a LoRA FinetuneJob on a tiny Llama, then the
example EvalJob (examples/benchmarks/) pointed at it, offline: arc_easy from a datasets cache
prepared from the rows the repository ships, and the example's custom multiple-choice file
from the examples volume. The rows compare the finetuned adapter with its base model."""

from __future__ import annotations

import json

import pytest
import yaml
from kubetune_trainer.eval.harness.prepare import prepare_cache

from .manifests import causal_lm_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_benchmarks_of_a_finetuned_adapter_against_its_base(api, cluster, tiny_lm, chat_data,
                                                             repo_root, tmp_path):
    rows = repo_root / "tests" / "eval" / "data" / "arc_easy-rows.jsonl"
    cache = tmp_path / "hf-datasets-cache"
    prepare_cache(cache, "allenai/ai2_arc", "ARC-Easy",
                  {"train": rows, "validation": rows, "test": rows})
    api.create(causal_lm_job("bench", tiny_lm, chat_data, max_steps=20,
                             output={"mergeAdapter": False}))

    doc = yaml.safe_load((repo_root / "examples" / "benchmarks" / "evaljob.yaml").read_text())
    spec = doc["spec"]
    spec["model"] = {"finetuneJobRef": {"name": "bench"}}
    del spec["baseline"]
    spec["dataset"] = {"uri": f"file://{chat_data}", "format": "chat", "limit": 8}
    spec["benchmarks"] = [
        {"task": "arc_easy", "numFewshot": 1, "limit": 6},
        {"uri": "pvc://kubetune-examples/benchmarks/animals-mc.jsonl",
         "format": "multiple-choice"}]
    spec["benchmarkData"] = {"uri": f"file://{cache}"}
    spec["generation"] = {"maxNewTokens": 8, "batchSize": 4}
    spec["resources"] = {"gpus": 0}
    spec["output"] = {"uri": "pvc://models/bench-eval"}
    api.create(doc)

    status = api.wait_status("FinetuneJob", "bench", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=300)
    assert status["phase"] == "Succeeded", status.get("failure")
    assert "modelUri" not in status["result"]  # the adapter alone: loaded on its base
    evaluation = api.wait_status("EvalJob", doc["metadata"]["name"], lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=400)
    assert evaluation["phase"] == "Succeeded", evaluation.get("failure")
    rows = {row["name"]: row for row in evaluation["benchmarks"]}
    assert list(rows) == ["arc_easy/acc", "arc_easy/acc_norm",
                          "animals-mc/acc", "animals-mc/acc_norm"]
    for row in rows.values():
        assert row["baselineName"] == "base"
        assert row["ciLow"] <= row["value"] <= row["ciHigh"]
        assert row["deltaCiLow"] <= row["delta"] <= row["deltaCiHigh"]
    assert rows["arc_easy/acc"]["samples"] == 6 and rows["arc_easy/acc"]["numFewshot"] == 1
    assert rows["animals-mc/acc"]["samples"] == 6
    out = cluster.workdir / "pvcs" / "team-a" / "models" / "bench-eval"
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["uri"] == "pvc://models/bench/adapter"
    assert len((out / "benchmarks.jsonl").read_text().splitlines()) == 12
