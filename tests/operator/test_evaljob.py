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


def _evaluate_after_finetune(api, eval_doc, summary):
    """The FinetuneJob succeeds, then the EvalJob's pod ends with `summary` as its message."""
    api.create(FINETUNE_JOB)
    api.create(eval_doc)
    wait_for(lambda: api.raw_job("router-train"))
    _succeed_finetune(api)
    wait_for(lambda: api.raw_job("router-check-eval"))
    pod = api.start_pod("router-check-eval")
    api.end_pod(pod, exit_code=0, message=summary)
    api.finish_job("router-check-eval")


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
    # No list: every cheap baseline, plus the base model's untrained head (compareBaseline),
    # fitted on the FinetuneJob's own training data with its base encoder.
    assert config["baselines"] == ["majority", "tfidf", "probe", "zero-shot", "chance"]
    assert config["baselineTraining"]["uri"] == "pvc://data/feedback/train.jsonl"
    assert config["encoder"] == {"uri": "hf://sentence-transformers/all-MiniLM-L6-v2"}

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
    _evaluate_after_finetune(api, doc, SUMMARY)
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



GATED_SUMMARY = {
    "phase": "Succeeded", "reason": "Completed", "samples": 240, "headline": "f1",
    "results": [
        {"name": "f1", "value": 0.95, "ciLow": 0.92, "ciHigh": 0.97, "baseline": 0.92,
         "baselineName": "probe", "delta": 0.03, "deltaCiLow": -0.01, "deltaCiHigh": 0.06},
        {"name": "accuracy", "value": 0.96, "ciLow": 0.93, "ciHigh": 0.98, "baseline": 0.90,
         "baselineName": "probe", "delta": 0.06, "deltaCiLow": 0.02, "deltaCiHigh": 0.1}],
    "baselines": [{"name": "probe", "metrics": [{"name": "f1", "value": 0.92, "ciLow": 0.89,
                                                 "ciHigh": 0.95}]},
                  {"name": "majority", "metrics": [{"name": "f1", "value": 0.07}]}],
    "calibration": {"ece": 0.031, "brier": 0.08},
    "leakage": {"exact": 2, "nearDuplicates": 1},
    "reportUri": "pvc://models/router/eval/report.json",
}


def test_beat_baseline_gate_baselines_calibration_and_leakage_reach_the_status(api, operator):
    """f1 is above its value threshold but its paired delta interval includes 0: Passed is
    False and says which check held; accuracy beats the baseline significantly."""
    doc = copy.deepcopy(EVAL_JOB)
    doc["spec"]["thresholds"] = {"f1": {"value": 0.9, "beatBaseline": True},
                                 "accuracy": {"beatBaseline": True}}
    _evaluate_after_finetune(api, doc, GATED_SUMMARY)
    status = api.wait_condition("EvalJob", "router-check", "Passed", "False", "ThresholdsNotMet")
    rows = {r["name"]: r for r in status["results"]}
    assert rows["f1"] == {"name": "f1", "value": 0.95, "ciLow": 0.92, "ciHigh": 0.97,
                          "baseline": 0.92, "baselineName": "probe", "delta": 0.03,
                          "deltaCiLow": -0.01, "deltaCiHigh": 0.06, "threshold": 0.9,
                          "passed": False}
    assert rows["accuracy"]["passed"] is True and "threshold" not in rows["accuracy"]
    message = condition({"status": status}, "Passed")["message"]
    assert "f1 does not beat probe significantly" in message
    assert "held: f1 0.95 >= 0.9; accuracy beats probe significantly" in message
    assert [b["name"] for b in status["baselines"]] == ["probe", "majority"]
    assert status["baselines"][0]["metrics"][0] == {"name": "f1", "value": 0.92, "ciLow": 0.89,
                                                    "ciHigh": 0.95}
    assert status["calibration"] == {"ece": 0.031, "brier": 0.08}
    leakage = condition({"status": status}, "LeakageDetected")
    assert (leakage["status"], leakage["reason"]) == ("True", "OverlapFound")
    assert "2 evaluation examples are exact copies" in leakage["message"]


def _errors(operator, kind: str) -> float:
    return operator.metrics.reconcile_errors.labels(kind)._value.get()


def _succeed_with(api, result: dict) -> None:
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "result": result})
    api.finish_job("router-train")


def test_a_model_uri_the_uri_rules_refuse_fails_the_evaljob_clearly(api, operator):
    """The trainer reports status.result.adapterUri; nothing checked it before the EvalJob
    turns it into an evaluation config. A URI kubetune's own rules refuse (an S3 bucket name
    is 3-63 characters) fails the EvalJob once, naming the field, the value and the rule,
    instead of raising on every reconcile (a retry loop for ever)."""
    api.create(FINETUNE_JOB)
    api.create(EVAL_JOB)
    _succeed_with(api, {"adapterUri": "s3://b/x"})
    api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Succeeded")
    status = api.wait_condition("EvalJob", "router-check", "Failed", "True", "InvalidModelUri")
    message = status["failure"]["message"]
    assert "FinetuneJob router reported status.result.adapterUri 's3://b/x'" in message
    assert "valid S3 bucket" in message and status["failure"]["hint"]
    assert status["phase"] == "Failed"
    assert "router-check-eval" not in api.jobs()
    events = wait_for(lambda: [e for e in api.events("router-check")
                               if e["reason"] == "InvalidModelUri"])
    assert events[0]["type"] == "Warning"
    assert _errors(operator, "EvalJob") == 0 and _errors(operator, "FinetuneJob") == 0


def test_spec_evaluation_with_a_refused_model_uri_fails_its_evaljob_clearly(api, operator):
    """The same path through spec.evaluation: the FinetuneJob succeeds and creates its
    EvalJob (which names the FinetuneJob, not the URI), and that EvalJob fails clearly."""
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["evaluation"] = {"dataset": {"uri": "pvc://data/feedback/test.jsonl"}}
    api.create(doc)
    _succeed_with(api, {"modelUri": "s3://b/x"})
    finetune = api.wait_status("FinetuneJob", "router", lambda s: s.get("evalJobName"))
    assert finetune["phase"] == "Succeeded"
    status = api.wait_condition("EvalJob", finetune["evalJobName"], "Failed", "True",
                                "InvalidModelUri")
    assert "status.result.modelUri 's3://b/x'" in status["failure"]["message"]
    assert f"{finetune['evalJobName']}-eval" not in api.jobs()
    assert _errors(operator, "EvalJob") == 0 and _errors(operator, "FinetuneJob") == 0


BENCHMARK_SUMMARY = {
    "phase": "Succeeded", "reason": "Completed", "samples": 4,
    "results": [{"name": "loss", "value": 2.1, "baseline": 2.4, "baselineName": "base"}],
    "benchmarks": [
        {"name": "arc_easy/acc", "task": "arc_easy", "metric": "acc", "numFewshot": 5,
         "samples": 100, "value": 0.61, "ciLow": 0.51, "ciHigh": 0.7, "baseline": 0.55,
         "baselineName": "base", "delta": 0.06, "deltaCiLow": 0.01, "deltaCiHigh": 0.11},
        # What summary.fit leaves of a row when the message runs out of room.
        {"name": "gsm8k/exact_match,strict-match", "value": 0.1, "baseline": 0.12,
         "baselineName": "base", "numFewshot": 0, "samples": 50}],
}


def test_benchmarks_reach_the_evaluator_and_their_rows_the_status(api, operator):
    doc = copy.deepcopy(EVAL_JOB)
    doc["spec"]["benchmarks"] = [
        {"task": "arc_easy", "numFewshot": 5, "limit": 100},
        {"uri": "pvc://bench/legal-mc.jsonl", "format": "multiple-choice", "name": "legal"}]
    doc["spec"]["benchmarkData"] = {"uri": "pvc://hf-cache/datasets"}
    doc["spec"]["thresholds"] = {}
    del doc["spec"]["compareBaseline"]
    doc["spec"]["model"] = {"uri": "pvc://models/router/merged", "task": "causal-lm"}
    doc["spec"]["baseline"] = {"uri": "hf://Qwen/Qwen2.5-0.5B"}
    import json

    api.create(doc)
    wait_for(lambda: api.raw_job("router-check-eval"))
    config = json.loads(api.config_map("router-check-config")["data"]["config.json"])
    assert config["benchmarks"] == doc["spec"]["benchmarks"]
    assert config["benchmarkData"] == {"uri": "pvc://hf-cache/datasets"}
    assert config["baseline"] == {"uri": "hf://Qwen/Qwen2.5-0.5B"}  # the benchmarks' base too
    claims = {v["persistentVolumeClaim"]["claimName"]
              for v in api.raw_job("router-check-eval")["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert {"bench", "hf-cache"} <= claims

    pod = api.start_pod("router-check-eval")
    api.end_pod(pod, exit_code=0, message=BENCHMARK_SUMMARY)
    api.finish_job("router-check-eval")
    status = api.wait_condition("EvalJob", "router-check", "Succeeded", "True", "Completed")
    rows = {row["name"]: row for row in status["benchmarks"]}
    assert rows["arc_easy/acc"] == {**BENCHMARK_SUMMARY["benchmarks"][0]}
    assert rows["gsm8k/exact_match,strict-match"] == {
        "name": "gsm8k/exact_match,strict-match", "task": "gsm8k",
        "metric": "exact_match,strict-match", "value": 0.1, "baseline": 0.12,
        "baselineName": "base", "numFewshot": 0, "samples": 50}


def test_thresholds_gate_benchmark_rows(api, operator):
    doc = copy.deepcopy(EVAL_JOB)
    doc["spec"] = {"model": {"uri": "pvc://models/router/merged", "task": "causal-lm"},
                   "baseline": {"uri": "hf://Qwen/Qwen2.5-0.5B"},
                   "dataset": {"uri": "pvc://data/qa/test.jsonl"}, "metrics": ["loss"],
                   "benchmarks": [{"task": "arc_easy"}, {"task": "gsm8k"}],
                   "thresholds": {"arc_easy/acc": {"beatBaseline": True},
                                  "gsm8k/exact_match,strict-match": 0.2},
                   "resources": {"gpus": 0}}
    api.create(doc)
    wait_for(lambda: api.raw_job("router-check-eval"))
    pod = api.start_pod("router-check-eval")
    api.end_pod(pod, exit_code=0, message=BENCHMARK_SUMMARY)
    api.finish_job("router-check-eval")
    status = api.wait_condition("EvalJob", "router-check", "Passed", "False", "ThresholdsNotMet")
    rows = {row["name"]: row for row in status["benchmarks"]}
    assert rows["arc_easy/acc"]["passed"] is True  # deltaCiLow 0.01 > 0
    assert (rows["gsm8k/exact_match,strict-match"]["threshold"],
            rows["gsm8k/exact_match,strict-match"]["passed"]) == (0.2, False)
    message = condition({"status": status}, "Passed")["message"]
    assert "gsm8k/exact_match,strict-match 0.1 is not >= 0.2" in message
    assert "arc_easy/acc beats base significantly" in message
