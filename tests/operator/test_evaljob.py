"""EvalJobs: waiting on a FinetuneJob, scoring, thresholds, and failing with their model."""

from __future__ import annotations

import copy

from .cluster import FINETUNE_JOB, condition, wait_for

EVAL_JOB = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "EvalJob",
    "metadata": {"name": "router-check", "namespace": "team-a"},
    "spec": {
        "model": {"finetuneJobRef": {"name": "router"}},
        "compareBaseline": True,
        "dataset": {"uri": "pvc://data/feedback/test.jsonl"},
        "thresholds": {"f1": 0.85},
        "resources": {"gpus": 0},
    },
}

SUMMARY = {
    "phase": "Succeeded", "reason": "Completed", "samples": 200,
    "results": [{"name": "f1", "value": 0.91, "baseline": 0.2},
                {"name": "accuracy", "value": 0.93, "baseline": 0.25}],
    "errorAnalysis": {"confusion": [{"label": "billing", "predicted": "delivery", "count": 7}],
                      "worstClasses": [{"label": "delivery", "f1": 0.81}]},
    "reportUri": "pvc://models/router/eval/report.json",
}


def _succeed_finetune(api):
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "result": {
        "adapterUri": "pvc://models/router/adapter"}})
    api.finish_job("router-train")


def test_waits_for_the_finetune_job_then_scores_it(api, operator):
    api.create(EVAL_JOB)
    status = api.wait_condition("EvalJob", "router-check", "Running", "False", "WaitingForModel")
    assert "does not exist" in condition({"status": status}, "Running")["message"]
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    api.wait_condition("EvalJob", "router-check", "Running", "False", "WaitingForModel")
    assert "router-check-eval" not in api.jobs()

    _succeed_finetune(api)
    wait_for(lambda: api.raw_job("router-check-eval"), what="the evaluation Job")
    import json

    config = json.loads(api.config_map("router-check-config")["data"]["config.json"])
    # Adapter-only result: the evaluator needs the base model to load it.
    assert config["model"] == {"uri": "pvc://models/router/adapter",
                               "baseUri": "hf://sentence-transformers/all-MiniLM-L6-v2"}
    assert config["task"] == "sequence-classification"
    assert config["metrics"] == ["accuracy", "precision", "recall", "f1"]

    pod = api.start_pod("router-check-eval")
    api.end_pod(pod, exit_code=0, message=SUMMARY)
    api.finish_job("router-check-eval")
    status = api.wait_status("EvalJob", "router-check", lambda s: s.get("phase") == "Succeeded")
    f1 = next(r for r in status["results"] if r["name"] == "f1")
    assert f1 == {"name": "f1", "value": 0.91, "baseline": 0.2, "delta": 0.71,
                  "threshold": 0.85, "passed": True}
    assert status["samples"] == 200
    assert status["errorAnalysis"]["confusion"][0]["count"] == 7
    assert status["reportUri"].endswith("report.json")
    passed = condition({"status": status}, "Passed")
    assert (passed["status"], passed["reason"]) == ("True", "ThresholdsMet")
    series = {(s.labels["metric"], s.labels["model"]): s.value
              for f in operator.metrics.registry.collect() for s in f.samples
              if s.name == "kubetune_eval_metric"}
    assert series[("f1", "finetuned")] == 0.91 and series[("f1", "baseline")] == 0.2


def test_threshold_not_met_sets_passed_false(api, operator):
    doc = copy.deepcopy(EVAL_JOB)
    doc["spec"]["thresholds"] = {"f1": 0.95}
    api.create(FINETUNE_JOB)
    api.create(doc)
    wait_for(lambda: api.raw_job("router-train"))
    _succeed_finetune(api)
    wait_for(lambda: api.raw_job("router-check-eval"))
    pod = api.start_pod("router-check-eval")
    api.end_pod(pod, exit_code=0, message=SUMMARY)
    api.finish_job("router-check-eval")
    status = api.wait_condition("EvalJob", "router-check", "Passed", "False", "ThresholdsNotMet")
    assert "f1" in condition({"status": status}, "Passed")["message"]
    assert status["phase"] == "Succeeded"


def test_fails_when_its_finetune_job_fails(api, operator):
    api.create(FINETUNE_JOB)
    api.create(EVAL_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    api.start_pod("router-train")
    api.finish_job("router-train", type_="Failed", reason="DeadlineExceeded", succeeded=0)
    status = api.wait_condition("EvalJob", "router-check", "Failed", "True", "FinetuneJobFailed")
    assert "DeadlineExceeded" in status["failure"]["message"]
    assert "router-check-eval" not in api.jobs()


def test_eval_job_by_uri_runs_at_once(api, operator):
    doc = copy.deepcopy(EVAL_JOB)
    doc["spec"] = {"model": {"uri": "pvc://models/router/merged", "task": "causal-lm"},
                   "baseline": {"uri": "hf://Qwen/Qwen2.5-0.5B"},
                   "dataset": {"uri": "pvc://data/qa/test.jsonl"},
                   "metrics": ["perplexity", "rougeL"], "resources": {"gpus": 0}}
    api.create(doc)
    wait_for(lambda: api.raw_job("router-check-eval"))
    import json

    config = json.loads(api.config_map("router-check-config")["data"]["config.json"])
    assert config["metrics"] == ["perplexity", "rougeL"]
    assert config["baseline"] == {"uri": "hf://Qwen/Qwen2.5-0.5B"}

