"""ClusterFinetunePolicies in the operator, against the emulator with RBAC on (the operator has
only the chart's roles) and no admission policy installed (a cluster where the chart's
admissionPolicy is off): static rules fail a job with PolicyViolation naming the policy and the
field; maxRunningJobs and gpuHourBudget hold a job back and let it start when a job finishes or
the policy changes; defaultQueue and maxActiveDeadlineSeconds fill what the job leaves unset."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import kubernetes
import pytest
from kubetune.operator.status import Fit

from .cluster import FINETUNE_JOB, GROUP, NAMESPACE, VERSION, condition, now, wait_for


@pytest.fixture
def fit_checker():
    async def fits(body, spec) -> Fit:
        return Fit(True, "Fits", "not checked in this test")
    return fits


def _policy(api, name: str, **spec) -> dict:
    return api.custom.create_cluster_custom_object(GROUP, VERSION, "clusterfinetunepolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterFinetunePolicy",
        "metadata": {"name": name}, "spec": spec})


def _known(operator, count: int = 1) -> None:
    """Wait until the operator's watch has seen the policies: as on any cluster, a job
    created in the same instant as a policy may be judged before the policy arrives."""
    wait_for(lambda: operator.metrics.policies._value.get() == count,
             what="the operator to know the policies (kubetune_cluster_finetune_policies)")


def _patch_policy(api, name: str, spec: dict) -> None:
    api.custom.patch_cluster_custom_object(GROUP, VERSION, "clusterfinetunepolicies", name,
                                           {"spec": spec})


def _job(name: str, **spec) -> dict:
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["metadata"]["name"] = name
    doc["spec"].update(spec)
    return doc


def _has_job(api, name: str) -> bool:
    return f"{name}-train" in api.jobs()


def test_a_job_over_the_gpu_limit_fails_with_policy_violation_naming_policy_and_field(
        api, operator):
    _policy(api, "one-gpu", maxGpusPerPod=1)
    _known(operator)
    api.create(_job("two-gpus", resources={"gpus": 2}))
    status = api.wait_condition("FinetuneJob", "two-gpus", "Validated", "False", "PolicyViolation")
    validated = condition({"status": status}, "Validated")
    assert validated["message"] == (
        "ClusterFinetunePolicy one-gpu: spec.resources.gpus must be at most 1 (maxGpusPerPod)")
    assert status["phase"] == "Failed"
    assert condition({"status": status}, "Failed")["reason"] == "PolicyViolation"
    assert not _has_job(api, "two-gpus")
    # A relaxed policy does not revive it: the verdict belongs to this spec.
    _patch_policy(api, "one-gpu", {"maxGpusPerPod": 4})
    api.create(_job("one-gpu-job", resources={"gpus": 1}))
    wait_for(lambda: _has_job(api, "one-gpu-job"), what="the job within policy to start")
    assert api.status("FinetuneJob", "two-gpus")["phase"] == "Failed"
    assert not _has_job(api, "two-gpus")


def test_a_policy_for_other_namespaces_does_not_apply(api, operator):
    _policy(api, "team-b-only", maxGpusPerPod=0,
            namespaceSelector={"matchLabels": {"team": "b"}})
    _known(operator)
    api.create(_job("free", resources={"gpus": 1}))
    wait_for(lambda: _has_job(api, "free"), what="the Job")
    # Labelling the namespace makes the policy apply to the next job; a restarted operator
    # reads policies and namespace labels before judging any job.
    api.core.patch_namespace(NAMESPACE, {"metadata": {"labels": {"team": "b"}}})
    operator.restart()
    api.create(_job("bound", resources={"gpus": 1}))
    status = api.wait_condition("FinetuneJob", "bound", "Validated", "False", "PolicyViolation")
    assert "ClusterFinetunePolicy team-b-only: spec.resources.gpus" in condition(
        {"status": status}, "Validated")["message"]


def test_default_queue_and_deadline_fill_what_the_job_leaves_unset(api, operator):
    _policy(api, "queues", allowedQueues=["gpu-small"], defaultQueue="gpu-small",
            maxActiveDeadlineSeconds=3600)
    _known(operator)
    api.create(_job("queued"))
    job = wait_for(lambda: api.raw_job("queued-train"), what="the Job")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-small"
    assert job["spec"]["activeDeadlineSeconds"] == 3600


def test_max_running_jobs_holds_the_next_job_until_one_finishes(api, operator):
    _policy(api, "one-at-a-time", maxRunningJobs=1)
    _known(operator)
    api.create(_job("first"))
    wait_for(lambda: _has_job(api, "first"), what="the first Job")
    api.create(_job("second"))
    status = api.wait_condition("FinetuneJob", "second", "Running", "False", "WaitingForPolicy")
    assert condition({"status": status}, "Running")["message"].startswith(
        "ClusterFinetunePolicy one-at-a-time: 1 jobs are running in namespace team-a, at most 1")
    assert status["phase"] == "Pending" and not _has_job(api, "second")
    assert operator.metrics.policy_waiting_jobs.labels(NAMESPACE, "WaitingForPolicy")._value.get() == 1
    pod = api.start_pod("first-train")
    api.end_pod(pod, exit_code=0, message={"trainLoss": 0.1})
    api.finish_job("first-train")
    api.wait_status("FinetuneJob", "first", lambda s: s.get("phase") == "Succeeded")
    wait_for(lambda: _has_job(api, "second"), what="the second Job once the first finished")
    assert operator.metrics.policy_waiting_jobs.labels(NAMESPACE, "WaitingForPolicy")._value.get() == 0


def test_an_exhausted_gpu_budget_holds_gpu_jobs_until_the_budget_frees(api, operator):
    _policy(api, "budget", gpuHourBudget={"hours": 1, "windowDays": 7})
    _known(operator)
    api.create(_job("spent", resources={"gpus": 1}))
    wait_for(lambda: _has_job(api, "spent"), what="the first GPU job, within budget")
    # Its pod ran two hours on one GPU (as the kubelet reports it); the operator accounts
    # status.gpuSeconds from that.
    pod = api.start_pod("spent-train")
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.set_pod_status(pod, {"phase": "Succeeded", "containerStatuses": [{
        "name": "trainer", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": "{}",
                                 "startedAt": two_hours_ago, "finishedAt": now()}}}]})
    api.finish_job("spent-train")
    done = api.wait_status("FinetuneJob", "spent", lambda s: s.get("phase") == "Succeeded")
    assert done["gpuSeconds"] >= 7200
    # The namespace's usage shows as it is accounted, before any job asks to start.
    wait_for(lambda: operator.metrics.gpu_hours_used.labels(NAMESPACE)._value.get() >= 2,
             what="kubetune_policy_gpu_hours_used to count the finished job")
    api.create(_job("cpu-only", resources={"gpus": 0}))
    wait_for(lambda: _has_job(api, "cpu-only"), what="a CPU job, which no GPU budget holds")
    api.create(_job("gpu", resources={"gpus": 1}))
    status = api.wait_condition("FinetuneJob", "gpu", "Running", "False", "BudgetExhausted")
    assert condition({"status": status}, "Running")["message"].startswith(
        "ClusterFinetunePolicy budget: namespace team-a used 2.00 of 1 GPU-hours in the last "
        "7 days (gpuHourBudget)")
    assert status["phase"] == "Pending" and not _has_job(api, "gpu")
    assert operator.metrics.gpu_hours_used.labels(NAMESPACE)._value.get() == pytest.approx(2, abs=0.01)
    assert operator.metrics.gpu_hours_remaining.labels(NAMESPACE)._value.get() == 0.0
    _patch_policy(api, "budget", {"gpuHourBudget": {"hours": 10, "windowDays": 7}})
    wait_for(lambda: _has_job(api, "gpu"), what="the GPU job once the budget was raised")
    assert operator.metrics.gpu_hours_remaining.labels(NAMESPACE)._value.get() == pytest.approx(
        8, abs=0.01)
    with pytest.raises(kubernetes.client.exceptions.ApiException):
        _policy(api, "bad", defaultQueue="a", allowedQueues=["b"])  # the CRD's CEL rule


def _ran_for(api, job_name: str, hours: float) -> None:
    """The Job's pod ran `hours` and succeeded, as the kubelet and Job controller report it."""
    pod = api.start_pod(job_name)
    started = (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.set_pod_status(pod, {"phase": "Succeeded", "containerStatuses": [{
        "name": "trainer", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": "{}",
                                 "startedAt": started, "finishedAt": now()}}}]})
    api.finish_job(job_name)


def test_usage_that_one_reconcile_accounts_and_finishes_shows_in_the_budget_metric(api, operator):
    # The pod's GPU time and the Job's end reach the operator together (it was down while
    # they happened), so a single reconcile writes gpuSeconds and phase Succeeded at once;
    # the budget metric must read that status, not the one before it.
    _policy(api, "budget", gpuHourBudget={"hours": 10, "windowDays": 7})
    _known(operator)
    api.create(_job("spent", resources={"gpus": 1}))
    wait_for(lambda: _has_job(api, "spent"), what="the GPU job, within budget")
    operator.stop()
    _ran_for(api, "spent-train", hours=3)
    operator.start()
    api.wait_status("FinetuneJob", "spent", lambda s: s.get("phase") == "Succeeded")
    wait_for(lambda: operator.metrics.gpu_hours_used.labels(NAMESPACE)._value.get() >= 3,
             what="kubetune_policy_gpu_hours_used to count the job finished while it was down")
    assert operator.metrics.gpu_hours_remaining.labels(NAMESPACE)._value.get() == pytest.approx(
        7, abs=0.01)


def test_an_evaljob_accounts_its_gpu_seconds_and_they_count_against_the_budget(api, operator):
    _policy(api, "budget", gpuHourBudget={"hours": 0.5})
    _known(operator)
    api.create({"apiVersion": f"{GROUP}/{VERSION}", "kind": "EvalJob",
                "metadata": {"name": "scored", "namespace": NAMESPACE},
                "spec": {"model": {"uri": "pvc://models/router", "task": "sequence-classification"},
                         "dataset": {"uri": "pvc://data/test.jsonl"}, "resources": {"gpus": 1}}})
    wait_for(lambda: "scored-eval" in api.jobs(), what="the EvalJob's Job")
    _ran_for(api, "scored-eval", hours=1)
    done = api.wait_status("EvalJob", "scored", lambda s: s.get("phase") in ("Succeeded", "Failed"))
    assert done["gpuSeconds"] >= 3600
    api.create(_job("after", resources={"gpus": 1}))
    api.wait_condition("FinetuneJob", "after", "Running", "False", "BudgetExhausted")
