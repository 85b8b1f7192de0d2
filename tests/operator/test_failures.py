"""Each failure class becomes a condition reason with a hint users can act on."""

from __future__ import annotations

import copy

import pytest

from .cluster import FINETUNE_JOB, condition, wait_for


def _running(api) -> str:
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    return api.start_pod("router-train")


def _failed_status(api, reason: str) -> dict:
    return api.wait_condition("FinetuneJob", "router", "Failed", "True", reason)


def test_oom_killed(api, operator):
    pod = _running(api)
    api.end_pod(pod, exit_code=137, reason="OOMKilled")
    api.finish_job("router-train", type_="Failed", reason="BackoffLimitExceeded", succeeded=0,
                   failed=3)
    status = _failed_status(api, "OOMKilled")
    assert status["phase"] == "Failed"
    assert "gradientCheckpointing" in status["failure"]["hint"]


@pytest.mark.parametrize("reason", ["InvalidDataset", "ModelNotFound", "OutputInUse"])
def test_bad_input_reported_by_the_trainer(api, operator, reason):
    pod = _running(api)
    message = "no usable rows: line 3 malformed JSON; line 7 missing field 'label'"
    api.end_pod(pod, exit_code=2, message={"phase": "Failed", "reason": reason, "message": message})
    api.finish_job("router-train", type_="Failed", reason="PodFailurePolicy", succeeded=0, failed=1)
    status = _failed_status(api, reason)
    assert status["failure"]["message"] == message
    assert condition({"status": status}, "Failed")["message"] == message
    events = wait_for(lambda: [e for e in api.events("router") if e["reason"] == reason])
    assert events[0]["type"] == "Warning"
    if reason == "OutputInUse":
        assert "spec.output.overwrite: true" in status["failure"]["hint"]


def test_deadline_exceeded(api, operator):
    _running(api)
    api.finish_job("router-train", type_="Failed", reason="DeadlineExceeded", succeeded=0)
    assert "activeDeadlineSeconds" in _failed_status(api, "DeadlineExceeded")["failure"]["hint"]


def test_backoff_limit_exceeded_after_retries(api, operator):
    first = _running(api)
    api.end_pod(first, exit_code=1, message="Traceback ...\nRuntimeError: NCCL timeout")
    second = api.start_pod("router-train", suffix="b")
    # A retry is running, not failed.
    api.wait_status("FinetuneJob", "router",
                    lambda s: s.get("attempts") == 2 and s.get("phase") == "Running")
    api.end_pod(second, exit_code=1, message="Traceback ...\nRuntimeError: NCCL timeout")
    api.finish_job("router-train", type_="Failed", reason="BackoffLimitExceeded", succeeded=0,
                   failed=2)
    status = _failed_status(api, "BackoffLimitExceeded")
    assert "NCCL timeout" in status["failure"]["message"]


def test_trainer_error_without_a_job_reason(api, operator):
    pod = _running(api)
    api.end_pod(pod, exit_code=1, message={"phase": "Failed", "reason": "TrainerError",
                                           "message": "CUDA error: device-side assert"})
    api.finish_job("router-train", type_="Failed", reason="", succeeded=0, failed=1)
    assert _failed_status(api, "TrainerError")["failure"]["message"] == (
        "CUDA error: device-side assert")


def test_a_job_failure_seen_before_the_pods_exit_waits_for_it(api, operator, cluster):
    """The Job's Failed condition can reach the operator before the pod's terminated state:
    watches are per resource type, with no order across types (Kubernetes API concepts,
    "Efficient detection of changes"; the Job controller updates the Job after the kubelet
    updated the pod, but the two watch streams deliver independently). The trainer's reason
    and message come with the pod, and a terminal phase is final, so the job must not be
    declared Failed before the pod's exit status is seen: no stored status (and no Event)
    may ever say Failed without the message."""
    pod = _running(api)
    api.finish_job("router-train", type_="Failed", reason="BackoffLimitExceeded", succeeded=0,
                   failed=1)
    # The operator has seen the failed Job while the pod still looks running (the kubelet's
    # update is held back here): it waits for the exit status, and says so.
    seen = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Failed" or (
        "the Job failed" in (condition({"status": s}, "Running") or {}).get("message", "")))
    assert seen["phase"] == "Running", seen.get("failure")
    api.end_pod(pod, exit_code=1, message={"phase": "Failed", "reason": "TrainerError",
                                           "message": "CUDA error: device-side assert"})
    status = _failed_status(api, "BackoffLimitExceeded")
    assert status["failure"]["message"] == "CUDA error: device-side assert"
    stored = cluster.call(lambda e: [ev.new for ev in e.store.events_since(
        ("kubetune.io", "finetunejobs"), 0)])
    failed = [s["status"] for s in stored if (s.get("status") or {}).get("phase") == "Failed"]
    assert failed and all(s["failure"]["message"] == "CUDA error: device-side assert"
                          for s in failed), [s["failure"] for s in failed]
    events = [e for e in api.events("router") if e["reason"] == "BackoffLimitExceeded"]
    assert [e["message"] for e in events] == ["CUDA error: device-side assert"]


@pytest.mark.parametrize(("pod_status", "reason"), [
    ({"phase": "Pending", "containerStatuses": [{
        "name": "trainer", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}}]},
     "ImagePullFailed"),
    ({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]},
     "Unschedulable"),
    ({"phase": "Pending", "containerStatuses": [{
        "name": "trainer", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"waiting": {"reason": "CreateContainerConfigError",
                              "message": 'secret "s3-creds" not found'}}}]},
     "SecretNotFound"),
    ({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": 'persistentvolumeclaim "data" not found'}]},
     "PersistentVolumeClaimNotFound"),
], ids=["image-pull", "unschedulable", "missing-secret", "missing-pvc"])
def test_pods_that_cannot_start_say_why(api, operator, pod_status, reason):
    pod = _running(api)
    api.set_pod_status(pod, {**pod_status, "podIP": None})
    api.set_job_status("router-train", {"active": 1})
    status = api.wait_condition("FinetuneJob", "router", "Running", "False", reason)
    assert status["phase"] == "Pending"  # not terminal: fixing the cause lets it start
    assert status["failure"]["reason"] == reason and status["failure"]["hint"]


def test_invalid_spec_is_failed_without_children(api, operator):
    doc = copy.deepcopy(FINETUNE_JOB)
    # The CRD's pattern admits any pvc:// URI (a real API server stores this object); only the
    # operator's own validation knows that '..' would escape the claim's mount.
    doc["spec"]["dataset"]["uri"] = "pvc://data/../etc/train.jsonl"
    api.create(doc)
    status = _failed_status(api, "InvalidSpec")
    validated = condition({"status": status}, "Validated")
    assert validated["status"] == "False"
    assert "spec.dataset.uri: must not contain '..' in the path" in validated["message"]
    assert api.jobs() == []
    events = wait_for(lambda: [e for e in api.events("router") if e["reason"] == "InvalidSpec"])
    assert events[0]["type"] == "Warning"


def test_disallowed_uri_scheme_is_an_invalid_spec(api, operator_settings, operator_kubeconfig):
    from dataclasses import replace

    from .conftest import OperatorControl

    control = OperatorControl(replace(operator_settings, allowed_uri_schemes=("hf", "s3")),
                              operator_kubeconfig, None).start()
    try:
        api.create(FINETUNE_JOB)
        status = _failed_status(api, "InvalidSpec")
        assert "spec.dataset.uri: scheme pvc:// is not allowed" in status["failure"]["message"]
    finally:
        control.stop()


def test_a_spec_check_that_raises_marks_the_job_invalid_once(api, operator, monkeypatch):
    """A bug in the spec check (injected here: no known input makes it raise, see
    tests/api/test_hostile_input.py) must not become a reconcile retried for ever: the job is
    Failed with InvalidSpec for that generation, no Job is created, and the error is counted."""
    from kubetune.operator import reconcile

    def broken_check(body, label="<document>"):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(reconcile, "validate_document", broken_check)
    api.create(FINETUNE_JOB)
    status = _failed_status(api, "InvalidSpec")
    assert "could not be checked (RecursionError" in status["failure"]["message"]
    assert status["observedGeneration"] == 1
    assert api.jobs() == []
    metrics = operator.metrics
    assert metrics.spec_check_errors.labels("FinetuneJob")._value.get() >= 1
    assert metrics.reconcile_errors.labels("FinetuneJob")._value.get() == 0  # never retried
