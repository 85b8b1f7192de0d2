"""A child create the API server refuses gets a clear condition, and is not retried in a loop.

The refusals come from a ValidatingAdmissionPolicy in the emulator, as on a cluster whose
admins reject Jobs they do not accept (Kubernetes docs, "Validating Admission Policy": a
denied request answers 422 Invalid by default, 403 with `reason: Forbidden`). The operator's
API client counts its requests, to show that a refusal does not turn into a retry storm.
"""

from __future__ import annotations

import copy
import time

import pytest
from kubetune.operator.settings import Settings

from .cluster import FINETUNE_JOB, NAMESPACE, ClusterApi, CountingKube, condition, wait_for

POLICIES = ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
BINDINGS = ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")
JOBS_PATH = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"


@pytest.fixture
def operator_settings(progress_server) -> Settings:
    return Settings(metrics_port=0, health_port=0, progress_interval_seconds=0.2,
                    progress_port=progress_server.port, trainer_image="kubetune/trainer:test",
                    rejected_retry_seconds=2.0)


def _deny_jobs(api: ClusterApi, message: str, reason: str | None = None,
               group: str = "batch", resource: str = "jobs") -> None:
    validation = {"expression": "false", "message": message, **({"reason": reason} if reason else {})}
    api.custom.create_cluster_custom_object(*POLICIES, {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "no-training"},
        "spec": {"validations": [validation], "matchConstraints": {"resourceRules": [{
            "apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE"],
            "resources": [resource]}]}}})
    api.custom.create_cluster_custom_object(*BINDINGS, {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "no-training"},
        "spec": {"policyName": "no-training", "validationActions": ["Deny"]}})


def _allow_jobs(api: ClusterApi) -> None:
    api.custom.delete_cluster_custom_object(*BINDINGS, "no-training")


def _job_posts(kube: CountingKube) -> int:
    return kube.sent[("POST", JOBS_PATH)]


def test_a_422_fails_the_job_with_the_server_message_and_is_not_retried(api, operator,
                                                                        counting_kube):
    _deny_jobs(api, "training Jobs need a cost-centre label")
    api.create(FINETUNE_JOB)
    status = api.wait_condition("FinetuneJob", "router", "Failed", "True", "ChildRejected")
    assert status["phase"] == "Failed"
    message = condition({"status": status}, "Failed")["message"]
    assert "training Jobs need a cost-centre label" in message
    assert "Job team-a/router-train" in message and "HTTP 422" in message
    assert "change the spec" in status["failure"]["hint"]
    # Events of other objects, status writes, the progress poller: none creates it again.
    api.custom.patch_namespaced_custom_object(
        "kubetune.io", "v1alpha1", NAMESPACE, "finetunejobs", "router",
        {"metadata": {"labels": {"touched": "yes"}}})  # an event, same generation
    time.sleep(1.0)
    assert _job_posts(counting_kube) == 1

    # A changed spec is a new generation: it is tried again, and now the policy is gone.
    _allow_jobs(api)
    api.patch_spec("FinetuneJob", "router", {"suspend": True})
    wait_for(lambda: api.raw_job("router-train"), what="the Job of the new generation")
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") != "Failed")
    assert condition({"status": status}, "Failed")["status"] == "False"
    assert status.get("failure") is None


def test_a_403_is_reported_as_forbidden_and_retried_slowly(api, operator, counting_kube):
    _deny_jobs(api, "only the batch team may run Jobs here", reason="Forbidden")
    api.create(FINETUNE_JOB)
    status = api.wait_condition("FinetuneJob", "router", "Running", "False", "Forbidden")
    assert status["phase"] == "Pending"
    assert status["failure"]["reason"] == "Forbidden"
    assert "only the batch team may run Jobs here" in status["failure"]["message"]
    assert "finalizers" in status["failure"]["hint"]  # what OpenShift-like clusters need
    started = time.monotonic()
    wait_for(lambda: _job_posts(counting_kube) >= 2, timeout=10, what="a second, later try")
    assert time.monotonic() - started >= 1.0  # not at once: after rejected_retry_seconds
    assert _job_posts(counting_kube) <= 3

    _allow_jobs(api)
    wait_for(lambda: api.raw_job("router-train"), timeout=10, what="the Job, once allowed")
    api.wait_status("FinetuneJob", "router", lambda s: s.get("failure") is None)


def test_credentials_in_a_server_message_never_reach_status_or_events(api, operator):
    doc = copy.deepcopy(FINETUNE_JOB)
    _deny_jobs(api, "s3://AKIAEXAMPLE:wJalrXUtnFEMIsecret@bucket/x is not allowed; token=abc123xyz")
    api.create(doc)
    status = api.wait_condition("FinetuneJob", "router", "Failed", "True", "ChildRejected")
    events = wait_for(lambda: [e for e in api.events("router") if e["reason"] == "ChildRejected"])
    text = repr(status) + repr(events)
    assert "is not allowed" in text
    assert "wJalrXUtnFEMIsecret" not in text and "abc123xyz" not in text


def test_a_refused_evaluation_is_a_warning_and_not_retried(api, operator, counting_kube):
    """The training succeeded; the EvalJob it creates is refused: the FinetuneJob stays
    Succeeded, a Warning Event says why, and the refusal is not retried in a loop."""
    _deny_jobs(api, "evaluations run in the eval namespace only", group="kubetune.io",
               resource="evaljobs")
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["evaluation"] = {"dataset": {"uri": "pvc://data/feedback/test.jsonl"}}
    api.create(doc)
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "result": {
        "adapterUri": "pvc://models/router/adapter"}})
    api.finish_job("router-train")
    events = wait_for(lambda: [e for e in api.events("router") if e["reason"] == "ChildRejected"])
    assert events[0]["type"] == "Warning"
    assert "evaluations run in the eval namespace only" in events[0]["message"]
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Succeeded")
    assert not status.get("evalJobName")
    time.sleep(1.0)
    assert counting_kube.sent[("POST", f"/apis/kubetune.io/v1alpha1/namespaces/{NAMESPACE}/evaljobs")] == 1
