"""A FinetuneJob from creation to success, through the real operator and the emulator."""

from __future__ import annotations

import copy
import json

from kubetune.api import TrainerConfig

from .cluster import FINETUNE_JOB, condition, wait_for


def test_creation_makes_config_and_job_and_writes_conditions(api, operator):
    api.create(FINETUNE_JOB)
    job = wait_for(lambda: api.raw_job("router-train"), what="the training Job")
    owner = api.get("FinetuneJob", "router")
    assert job["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
    config = TrainerConfig.model_validate_json(api.config_map("router-config")["data"]["config.json"])
    assert config.hyperparameters.packing is False  # resolved for classification
    assert config.dataset.uri == "pvc://data/feedback/train.jsonl"

    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Pending")
    types = [c["type"] for c in status["conditions"]]
    assert types == ["Validated", "ResourcesFit", "Running", "Succeeded", "Failed", "Suspended"]
    assert condition({"status": status}, "Validated")["reason"] == "SpecValid"
    assert all(c["reason"] and c["lastTransitionTime"] for c in status["conditions"])
    assert status["jobName"] == "router-train"
    assert status["observedGeneration"] == owner["metadata"]["generation"]


def test_pod_spec_is_secure_and_wired_to_the_config(api, operator):
    api.create(FINETUNE_JOB)
    job = wait_for(lambda: api.raw_job("router-train"))
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # One CPU process: the trainer itself, no launcher (see kubetune.launch).
    assert container["command"] == ["python", "-m", "kubetune_trainer", "--config",
                                    "/etc/kubetune/config.json"]
    assert {"secretRef": {"name": "s3-creds"}} in container["envFrom"]
    claims = {v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"]["readOnly"]
              for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"data": True, "models": False}  # only the output claim is writable


def test_running_progress_then_success_fills_result(api, operator, progress_server):
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.wait_condition("FinetuneJob", "router", "Running", "True", "PodsRunning")

    progress_server.report = {"step": 12, "totalSteps": 40, "epoch": 0.3, "trainLoss": 1.25,
                              "evalLoss": 1.5, "tokensPerSecond": 512.0, "etaSeconds": 30,
                              "checkpoint": {"uri": "pvc://models/router/checkpoints/checkpoint-10",
                                             "step": 10, "time": "2026-01-01T00:00:00Z"}}
    status = api.wait_status("FinetuneJob", "router",
                             lambda s: (s.get("progress") or {}).get("step") == 12)
    assert status["progress"]["percent"] == 30
    assert status["checkpoint"] == {"uri": "pvc://models/router/checkpoints/checkpoint-10",
                                    "step": 10, "time": "2026-01-01T00:00:00Z"}
    assert status["progress"]["trainLoss"] == 1.25
    assert status["phase"] == "Running"

    summary = {"phase": "Succeeded", "reason": "Completed", "message": "done", "step": 40,
               "totalSteps": 40, "result": {"adapterUri": "pvc://models/router/adapter",
                                            "trainLoss": 0.2, "evalLoss": 0.3}}
    api.end_pod(pod, exit_code=0, message=summary)
    api.finish_job("router-train")
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Succeeded")
    assert status["result"] == {"adapterUri": "pvc://models/router/adapter", "trainLoss": 0.2,
                                "evalLoss": 0.3}
    assert status["progress"]["percent"] == 100
    assert condition({"status": status}, "Succeeded")["reason"] == "Completed"
    assert status["completionTime"] and status["attempts"] == 1
    assert "failure" not in status
    events = wait_for(lambda: [e for e in api.events("router") if e["reason"] == "Completed"])
    assert events[0]["type"] == "Normal"


def test_overfitting_and_a_plateau_are_raised_while_the_job_runs(api, operator, progress_server):
    """The trainer reports training-health findings on GET /progress; the operator turns them
    into conditions (and an Event) before the job ends, not only from the final summary."""
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    api.start_pod("router-train")
    api.wait_condition("FinetuneJob", "router", "Running", "True", "PodsRunning")
    overfitting = ("eval loss rose 3 evaluations in a row (0.3100 at step 40 -> 0.3900 at step "
                   "70) while the train loss fell (0.4000 -> 0.2000)")
    plateau = {"metric": "evalLoss", "sinceStep": 40, "evals": 3, "value": 0.31, "best": 0.31,
               "latest": 0.39}
    progress_server.report = {"step": 70, "totalSteps": 100, "trainLoss": 0.2, "evalLoss": 0.39,
                              "warnings": [{"reason": "Overfitting", "message": overfitting}],
                              "plateau": plateau}
    status = api.wait_condition("FinetuneJob", "router", "Overfitting", "True", "Overfitting")
    assert status["phase"] == "Running"  # raised while running
    assert condition({"status": status}, "Overfitting")["message"] == overfitting
    status = api.wait_condition("FinetuneJob", "router", "Plateau", "True", "NoImprovement")
    assert status["progress"]["plateau"] == plateau and status["phase"] == "Running"
    assert "since step 40" in condition({"status": status}, "Plateau")["message"]
    events = wait_for(lambda: [e for e in api.events("router") if e["reason"] == "Overfitting"])
    assert events[0]["type"] == "Warning" and "0.3900 at step 70" in events[0]["message"]

    # A real gain: the plateau clears from the progress and the condition says so.
    progress_server.report = {**progress_server.report, "step": 80, "plateau": None}
    status = api.wait_condition("FinetuneJob", "router", "Plateau", "False", "Improving")
    assert "plateau" not in status["progress"]
    assert condition({"status": status}, "Overfitting")["status"] == "True"


def test_unreachable_progress_endpoint_does_not_fail_the_job(api, operator, progress_server):
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    api.start_pod("router-train", ip="127.0.0.1")
    progress_server.report = None  # answers 503
    api.wait_condition("FinetuneJob", "router", "Running", "True")
    wait_for(lambda: progress_server.requests >= 3, what="several polls")
    status = api.status("FinetuneJob", "router")
    assert status["phase"] == "Running" and "progress" not in status


def test_evaluation_creates_an_eval_job_after_success(api, operator):
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["evaluation"] = {"dataset": {"uri": "pvc://data/feedback/test.jsonl"},
                                 "thresholds": {"f1": 0.8,
                                                "accuracy": {"beatBaseline": True}}}
    api.create(doc)
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "reason": "Completed",
                                           "result": {"modelUri": "pvc://models/router/merged"}})
    api.finish_job("router-train")
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("evalJobName"))
    evaljob = api.get("EvalJob", status["evalJobName"])
    assert evaljob["spec"]["model"] == {"finetuneJobRef": {"name": "router"},
                                        "task": "sequence-classification"}
    assert evaljob["spec"]["thresholds"] == {"f1": 0.8, "accuracy": {"beatBaseline": True}}
    assert evaljob["metadata"]["ownerReferences"][0]["name"] == "router"
    # The EvalJob sees the FinetuneJob's success and starts scoring its merged model.
    eval_job = wait_for(lambda: api.raw_job("router-eval-eval"))
    config = json.loads(api.config_map("router-eval-config")["data"]["config.json"])
    assert config["model"]["uri"] == "pvc://models/router/merged"
    assert config["baseline"]["uri"] == "hf://sentence-transformers/all-MiniLM-L6-v2"
    assert eval_job["spec"]["template"]["spec"]["containers"][0]["command"][:3] == [
        "python", "-m", "kubetune_trainer.eval"]
