"""Kueue: a queued Job is Queued (not Suspended), the operator never fights Kueue over
Job.spec.suspend, a preemption is not a failure, and EvalJobs are queued too.

KueueMock (kueue_mock.py) plays Kueue's controller on the emulator's objects; the tests play
the Job controller and kubelet, as the other operator tests do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from kubetune.operator.settings import Settings

from .cluster import FINETUNE_JOB, NAMESPACE, ClusterApi, CountingKube, condition, wait_for
from .kueue_mock import WORKLOAD_CRD, KueueMock

QUEUED_JOB = copy.deepcopy(FINETUNE_JOB)
QUEUED_JOB["spec"]["queueName"] = "gpu-queue"
JOB_PATH = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/router-train"


@pytest.fixture
def kueue(cluster, api: ClusterApi) -> Iterator[KueueMock]:
    cluster.call(lambda emulator: emulator.install_crd(WORKLOAD_CRD))
    with KueueMock(api) as mock:
        yield mock


def _stop_pods(api: ClusterApi, pod: str, *, saved_step: int | None = None) -> None:
    """What kubelet and the Job controller do for a suspended Job: SIGTERM (the trainer
    saves a checkpoint and says so), then the pod is gone and none is active."""
    if saved_step is not None:
        api.end_pod(pod, exit_code=143, message={
            "phase": "Failed", "reason": "Preempted", "step": saved_step,
            "message": f"stopped by SIGTERM at step {saved_step}; checkpoint saved"})
    api.core.delete_namespaced_pod(pod, NAMESPACE)
    api.set_job_status("router-train", {"active": 0})


def _operator_job_writes(kube: CountingKube) -> int:
    return kube.sent[("PATCH", JOB_PATH)] + kube.sent[("PUT", JOB_PATH)]


def test_a_job_waiting_for_quota_is_queued_naming_its_queue(api, operator, kueue):
    api.create(QUEUED_JOB)
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Queued")
    running = condition({"status": status}, "Running")
    assert (running["status"], running["reason"]) == ("False", "WaitingForQuota")
    assert "gpu-queue" in running["message"]
    assert condition({"status": status}, "Suspended")["status"] == "False"
    assert status.get("failure") is None
    assert api.raw_job("router-train")["spec"]["suspend"] is True


def test_user_suspend_of_a_queued_job_deactivates_its_workload_never_the_job(
        api, operator, kueue, counting_kube, progress_server):
    kueue.quota["gpu-queue"] = True
    api.create(QUEUED_JOB)
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is False, what="admission")
    pod = api.start_pod("router-train")
    progress_server.report = {"step": 40, "totalSteps": 100, "checkpoint": {
        "uri": "pvc://models/router/checkpoints/checkpoint-40", "step": 40}}
    api.wait_status("FinetuneJob", "router", lambda s: (s.get("checkpoint") or {}).get("step") == 40)

    api.patch_spec("FinetuneJob", "router", {"suspend": True})
    # Kueue's documented switch: the Workload is deactivated; Kueue then suspends the Job.
    wait_for(lambda: kueue.workload("router-train")["spec"]["active"] is False,
             what="the Workload deactivated")
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is True, what="Kueue's suspend")
    _stop_pods(api, pod, saved_step=42)
    status = api.wait_condition("FinetuneJob", "router", "Suspended", "True", "Suspended")
    assert status["phase"] == "Suspended"
    assert "checkpoint at step 40" in condition({"status": status}, "Suspended")["message"]

    api.patch_spec("FinetuneJob", "router", {"suspend": False})
    wait_for(lambda: kueue.workload("router-train")["spec"]["active"] is True,
             what="the Workload active again")
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is False, what="re-admission")
    api.start_pod("router-train", suffix="b")
    status = api.wait_condition("FinetuneJob", "router", "Running", "True")
    assert condition({"status": status}, "Suspended")["reason"] == "Resumed"
    assert _operator_job_writes(counting_kube) == 0  # Kueue alone flips Job.spec.suspend


def test_preemption_requeues_and_resumes_without_a_failed_attempt(api, operator, kueue):
    kueue.quota["gpu-queue"] = True
    api.create(QUEUED_JOB)
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is False, what="admission")
    pod = api.start_pod("router-train")
    api.wait_condition("FinetuneJob", "router", "Running", "True")

    kueue.quota["gpu-queue"] = False  # a higher-priority workload takes the quota
    kueue.preempt("router-train")
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is True, what="preemption")
    _stop_pods(api, pod, saved_step=17)
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Queued")
    assert "preempted" in condition({"status": status}, "Running")["message"]
    assert condition({"status": status}, "Failed")["status"] == "False"
    assert condition({"status": status}, "Suspended")["status"] == "False"
    assert status.get("failure") is None

    kueue.quota["gpu-queue"] = True
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is False, what="re-admission")
    api.start_pod("router-train", suffix="b")
    status = api.wait_condition("FinetuneJob", "router", "Running", "True")
    assert status["attempts"] == 1  # the preempted pod was not a failed attempt


EVAL_JOB = {
    "apiVersion": "kubetune.io/v1alpha1", "kind": "EvalJob",
    "metadata": {"name": "score", "namespace": NAMESPACE},
    "spec": {"model": {"uri": "pvc://models/router/merged", "task": "sequence-classification"},
             "dataset": {"uri": "pvc://data/feedback/test.jsonl"}, "resources": {"gpus": 1}},
}


@pytest.fixture
def operator_settings(progress_server) -> Settings:
    return Settings(metrics_port=0, health_port=0, progress_interval_seconds=0.2,
                    progress_port=progress_server.port, trainer_image="kubetune/trainer:test",
                    default_queue_name="shared-gpus")


def test_evaljobs_are_queued_too_with_the_default_queue(api, operator, kueue):
    api.create(EVAL_JOB)
    own = copy.deepcopy(EVAL_JOB)
    own["metadata"]["name"] = "score-own-queue"
    own["spec"]["queueName"] = "eval-queue"
    api.create(own)
    for name, queue in (("score-eval", "shared-gpus"), ("score-own-queue-eval", "eval-queue")):
        job = wait_for(lambda name=name: api.raw_job(name), what=f"Job {name}")
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == queue
        assert job["spec"]["suspend"] is True  # Kueue starts it on admission
    status = api.wait_status("EvalJob", "score", lambda s: s.get("phase") == "Queued")
    assert "shared-gpus" in condition({"status": status}, "Running")["message"]
