"""Suspend and resume, deletion, and an operator restart in the middle of a run."""

from __future__ import annotations

import copy

from .cluster import FINETUNE_JOB, NAMESPACE, condition, wait_for


def test_suspend_then_resume(api, operator):
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.wait_condition("FinetuneJob", "router", "Running", "True")

    api.patch_spec("FinetuneJob", "router", {"suspend": True})
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is True, what="Job suspended")
    # The pod still runs (saving its checkpoint): not Suspended yet.
    status = api.wait_condition("FinetuneJob", "router", "Suspended", "False", "Suspending")
    assert status["phase"] != "Suspended"
    # What the Job controller does for a suspended Job: the pods go, none is active.
    api.core.delete_namespaced_pod(pod, NAMESPACE)
    api.set_job_status("router-train", {"active": 0})
    status = api.wait_condition("FinetuneJob", "router", "Suspended", "True", "Suspended")
    assert status["phase"] == "Suspended"

    api.patch_spec("FinetuneJob", "router", {"suspend": False})
    wait_for(lambda: api.raw_job("router-train")["spec"]["suspend"] is False, what="Job resumed")
    status = api.wait_condition("FinetuneJob", "router", "Suspended", "False", "Resumed")
    assert status["phase"] != "Suspended"


def test_queued_job_is_created_suspended_for_kueue(api, operator):
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["queueName"] = "gpu-queue"
    api.create(doc)
    job = wait_for(lambda: api.raw_job("router-train"))
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job["spec"]["suspend"] is True  # Kueue unsuspends it on admission
    # The operator leaves unsuspending to Kueue: the Job stays suspended.
    api.wait_status("FinetuneJob", "router", lambda s: s.get("phase"))
    assert api.raw_job("router-train")["spec"]["suspend"] is True


def test_delete_removes_children_and_leaves_no_finalizer(api, operator):
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    assert not api.get("FinetuneJob", "router")["metadata"].get("finalizers")
    api.delete("FinetuneJob", "router")
    wait_for(lambda: api.jobs() == [], what="the Job garbage-collected")
    wait_for(lambda: not [p for p in api.core.list_namespaced_pod(NAMESPACE).items
                          if p.metadata.name == pod], what="the pod garbage-collected")
    names = [c.metadata.name for c in api.core.list_namespaced_config_map(NAMESPACE).items]
    assert "router-config" not in names
    # Its metrics series are gone too.
    wait_for(lambda: not _has_series(operator.metrics, "kubetune_train_loss", "router"))


def _has_series(metrics, name: str, job: str) -> bool:
    return any(s.labels.get("name") == job for f in metrics.registry.collect()
               for s in f.samples if s.name == name)


def test_operator_restart_mid_run_creates_nothing_twice(api, operator, progress_server):
    api.create(FINETUNE_JOB)
    first = wait_for(lambda: api.raw_job("router-train"))
    api.start_pod("router-train")
    progress_server.report = {"step": 5, "totalSteps": 50, "trainLoss": 2.0}
    before = api.wait_status("FinetuneJob", "router",
                             lambda s: (s.get("progress") or {}).get("step") == 5)

    operator.stop()
    progress_server.report = {"step": 9, "totalSteps": 50, "trainLoss": 1.5}
    operator.start()

    after = api.wait_status("FinetuneJob", "router",
                            lambda s: (s.get("progress") or {}).get("step") == 9)
    assert api.jobs() == ["router-train"]
    assert api.raw_job("router-train")["metadata"]["uid"] == first["metadata"]["uid"]
    assert after["phase"] == "Running"
    # Conditions that did not change keep their transition times.
    assert condition({"status": after}, "Validated")["lastTransitionTime"] == condition(
        {"status": before}, "Validated")["lastTransitionTime"]
    assert after["attempts"] == 1


def test_children_removed_after_finishing_are_not_created_again(api, operator):
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "result": {
        "adapterUri": "pvc://models/router/adapter"}})
    api.finish_job("router-train")
    api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Succeeded")
    # What ttlSecondsAfterFinished does: the Job (and its pods) go away.
    api.batch.delete_namespaced_job("router-train", NAMESPACE)
    wait_for(lambda: api.jobs() == [], what="the Job removed")
    api.patch_spec("FinetuneJob", "router", {"queueName": "other"})  # any event at all
    import time

    time.sleep(1.5)
    assert api.jobs() == []
    status = api.status("FinetuneJob", "router")
    assert status["phase"] == "Succeeded" and status["result"]["adapterUri"].endswith("adapter")
