"""Children belong to one incarnation of a job: found by owner uid, never by name alone.

Kubernetes frees a name the moment its object is deleted, while the garbage collector removes
the object's dependents asynchronously
(https://kubernetes.io/docs/concepts/architecture/garbage-collection/#background-deletion);
a dependent with a finalizer stays, marked with a deletionTimestamp, until the finalizer is
removed (https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/). The
tests hold the earlier run's children with a finalizer: the window `kubectl delete` +
`kubectl apply` opens on a real cluster, made as long as the test needs.
"""

from __future__ import annotations

import copy
import json

from .cluster import FINETUNE_JOB, NAMESPACE, condition, wait_for

HOLD = {"metadata": {"finalizers": ["test.kubetune.io/hold"]}}
RELEASE = {"metadata": {"finalizers": None}}


def _fail_run(api) -> None:
    """The first incarnation's run fails for a reason the second must never report."""
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=2, message={"phase": "Failed", "reason": "InvalidDataset",
                                           "message": "line 3: no text"})
    api.finish_job("router-train", type_="Failed", reason="PodFailurePolicy", failed=1,
                   succeeded=0)
    api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Failed")


def _recreate(api) -> str:
    api.delete("FinetuneJob", "router")
    wait_for(lambda: not [o for o in api.custom.list_namespaced_custom_object(
        "kubetune.io", "v1alpha1", NAMESPACE, "finetunejobs")["items"]], what="old job gone")
    return api.create(copy.deepcopy(FINETUNE_JOB))["metadata"]["uid"]


def _waiting(api, name_in_message: str) -> dict:
    """The job waits, and says for which object (the one in the way may change: first the
    earlier Job, then, once that is collected, its ConfigMap)."""
    def waits(status: dict) -> bool:
        running = condition({"status": status}, "Running") or {}
        return (running.get("reason") == "WaitingForPreviousRun"
                and name_in_message in running.get("message", ""))
    return api.wait_status("FinetuneJob", "router", waits)


def test_an_earlier_runs_job_is_never_adopted_nor_read_into_status(api, operator):
    api.create(copy.deepcopy(FINETUNE_JOB))
    _fail_run(api)
    old_uid = api.raw_job("router-train")["metadata"]["uid"]
    api.batch.patch_namespaced_job("router-train", NAMESPACE, HOLD)

    new_uid = _recreate(api)
    status = _waiting(api, f"{NAMESPACE}/router-train")
    assert status["phase"] == "Pending" and "failure" not in status
    assert not status.get("jobName")
    assert api.raw_job("router-train")["metadata"]["uid"] == old_uid  # never touched

    # The garbage collector gets to it: the job creates its own children and runs.
    api.batch.patch_namespaced_job("router-train", NAMESPACE, RELEASE)
    job = wait_for(lambda: (j := api.raw_job("router-train"))["metadata"]["uid"] != old_uid
                   and j, what="this incarnation's Job")
    assert job["metadata"]["ownerReferences"][0]["uid"] == new_uid
    config = json.loads(api.config_map("router-config")["data"]["config.json"])
    assert config["jobUid"] == new_uid
    api.start_pod("router-train", suffix="b")
    status = api.wait_condition("FinetuneJob", "router", "Running", "True", "PodsRunning")
    assert status["phase"] == "Running" and status["jobName"] == "router-train"


def test_an_earlier_runs_config_map_holds_back_the_job(api, operator):
    """Pods mount the ConfigMap by name: with the old one still there they would train the
    old spec. No Job is created until this job's own ConfigMap is in place."""
    api.create(copy.deepcopy(FINETUNE_JOB))
    wait_for(lambda: api.raw_job("router-train"))
    wait_for(lambda: api.config_map("router-config")["metadata"]["owner_references"][0]["kind"]
             == "Job", what="the ConfigMap handed over to the Job")
    api.core.patch_namespaced_config_map("router-config", NAMESPACE, HOLD)

    _recreate(api)
    wait_for(lambda: "router-train" not in api.jobs(), what="the old Job collected")
    _waiting(api, f"{NAMESPACE}/router-config")
    assert "router-train" not in api.jobs()

    api.core.patch_namespaced_config_map("router-config", NAMESPACE, RELEASE)
    job = wait_for(lambda: api.raw_job("router-train"), what="this incarnation's Job")
    config_map = api.config_map("router-config")
    assert config_map["metadata"]["owner_references"][0]["uid"] == job["metadata"]["uid"]


def test_a_job_of_the_same_name_with_another_owner_is_left_alone(api, operator):
    """A Job someone else made under the name (another controller, a live one, so the
    garbage collector keeps it) is not this job's: never adopted, never read."""
    keeper = api.core.create_namespaced_config_map(NAMESPACE, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keeper", "namespace": NAMESPACE}}).metadata.uid
    api.batch.create_namespaced_job(NAMESPACE, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "router-train", "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "kubetune",
                                "kubetune.io/finetunejob": "router"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                          "name": "keeper", "uid": keeper,
                                          "controller": True}]},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "trainer", "image": "busybox"}]}}},
    })
    api.set_job_status("router-train", {"conditions": [
        {"type": "Complete", "status": "True", "reason": "", "message": "",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}], "succeeded": 1})
    api.create(copy.deepcopy(FINETUNE_JOB))
    status = _waiting(api, f"ConfigMap keeper (uid {keeper})")
    assert status["phase"] == "Pending" and "result" not in status


def test_ttl_removal_of_the_job_takes_its_config_map_and_service(api, operator):
    """ttlSecondsAfterFinished deletes the Job with background propagation
    (https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/): what the
    Job owns goes with it, so the Job owns this run's ConfigMap and Service."""
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["resources"] = {"gpus": 0, "nodes": 2}
    api.create(doc)
    job = wait_for(lambda: api.raw_job("router-train"))
    service = lambda: api.core.read_namespaced_service("router-train", NAMESPACE).to_dict()  # noqa: E731
    for name, read in (("ConfigMap", lambda: api.config_map("router-config")),
                       ("Service", service)):
        wait_for(lambda r=read: r()["metadata"]["owner_references"][0]["uid"]
                 == job["metadata"]["uid"], what=f"the {name} owned by the Job")
    api.finish_job("router-train", succeeded=2)
    api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Succeeded")
    api.batch.delete_namespaced_job("router-train", NAMESPACE,
                                    propagation_policy="Background")
    names = lambda items: [i.metadata.name for i in items]  # noqa: E731
    wait_for(lambda: "router-config" not in names(
        api.core.list_namespaced_config_map(NAMESPACE).items), what="ConfigMap collected")
    assert "router-train" not in names(api.core.list_namespaced_service(NAMESPACE).items)
    assert api.status("FinetuneJob", "router")["phase"] == "Succeeded"


def test_observed_generation_only_for_changes_that_reached_the_job(api, operator):
    """spec.backoffLimit changed after the Job exists reaches no Job: observedGeneration
    stays; a suspend is carried to the Job, and reverting the change makes the spec current
    again."""
    api.create(copy.deepcopy(FINETUNE_JOB))
    wait_for(lambda: api.raw_job("router-train"))
    api.wait_status("FinetuneJob", "router", lambda s: s.get("observedGeneration") == 1)

    api.patch_spec("FinetuneJob", "router", {"backoffLimit": 5, "suspend": True})
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Suspended")
    assert api.get("FinetuneJob", "router")["metadata"]["generation"] == 2
    assert status["observedGeneration"] == 1
    assert {c["observedGeneration"] for c in status["conditions"]} == {1}

    api.patch_spec("FinetuneJob", "router", {"backoffLimit": 2})
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("observedGeneration") == 3)
    assert status["phase"] == "Suspended"


def test_delete_and_apply_again_waits_for_the_garbage_collector(api, operator, cluster):
    """`kubectl delete ftj router && kubectl apply -f router.yaml` (the InvalidDataset hint):
    the emulator's garbage collector acts a while after the DELETE, as kube-controller-
    manager's does, so the new job first meets the old Job with its failed run. It must
    never report that run, and it runs once the old children are gone."""
    cluster.call(lambda e: setattr(e.garbage_collector, "delay_seconds", 2.0))
    api.create(copy.deepcopy(FINETUNE_JOB))
    _fail_run(api)
    old_uid = api.raw_job("router-train")["metadata"]["uid"]
    api.delete("FinetuneJob", "router")
    new_uid = api.create(copy.deepcopy(FINETUNE_JOB))["metadata"]["uid"]  # at once

    status = _waiting(api, f"{NAMESPACE}/router-train")
    assert api.raw_job("router-train")["metadata"]["uid"] == old_uid  # not collected yet
    assert status["phase"] == "Pending"
    job = wait_for(lambda: (j := api.raw_job("router-train"))["metadata"]["uid"] != old_uid
                   and j, timeout=30, what="this incarnation's Job")
    assert job["metadata"]["ownerReferences"][0]["uid"] == new_uid
    api.start_pod("router-train", suffix="b")
    api.wait_condition("FinetuneJob", "router", "Running", "True", "PodsRunning")
    # Never, at any moment, did the new job's stored status say Failed.
    history = cluster.call(lambda e: [copy.deepcopy(ev.new) for ev in e.store.events_since(
        ("kubetune.io", "finetunejobs"), 0)])
    phases = {(o.get("status") or {}).get("phase") for o in history
              if o["metadata"]["uid"] == new_uid}
    assert "Failed" not in phases and "Running" in phases


def test_an_earlier_runs_eval_job_is_not_taken_for_this_jobs_evaluation(api, operator):
    """The EvalJob `<name>-eval` of another owner (a live one, so it stays) is not this
    job's evaluation: evalJobName stays empty until that EvalJob is gone, then this job
    creates its own."""
    keeper = api.core.create_namespaced_config_map(NAMESPACE, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keeper", "namespace": NAMESPACE}}).metadata.uid
    api.create({"apiVersion": "kubetune.io/v1alpha1", "kind": "EvalJob",
                "metadata": {"name": "router-eval", "namespace": NAMESPACE,
                             "labels": {"kubetune.io/finetunejob": "router"},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                  "name": "keeper", "uid": keeper,
                                                  "controller": True}]},
                "spec": {"model": {"finetuneJobRef": {"name": "router"}},
                         "dataset": {"uri": "pvc://data/feedback/old.jsonl"}}})
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["evaluation"] = {"dataset": {"uri": "pvc://data/feedback/test.jsonl"}}
    uid = api.create(doc)["metadata"]["uid"]
    wait_for(lambda: api.raw_job("router-train"))
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "reason": "Completed",
                                           "result": {"modelUri": "pvc://models/router/merged"}})
    api.finish_job("router-train")
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Succeeded")
    assert not status.get("evalJobName")

    api.delete("EvalJob", "router-eval")
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("evalJobName"),
                             timeout=30)
    evaljob = api.get("EvalJob", "router-eval")
    assert evaljob["metadata"]["ownerReferences"][0]["uid"] == uid
    assert evaljob["spec"]["dataset"]["uri"] == "pvc://data/feedback/test.jsonl"
