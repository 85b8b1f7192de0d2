"""KueueMock: a stand-in for Kueue's controller, which cannot run here (no kube-apiserver, no
images). It is a mock of an edge that cannot exist in these tests, acting on the emulator's
objects the way Kueue's batch/v1 Job integration does (Kueue docs: "Run A Kubernetes Job",
"Workload", "Preemption"):

- a Job labelled `kueue.x-k8s.io/queue-name` gets a Workload that the Job owns (controller
  ownerReference), with `spec.queueName` and `spec.active: true`;
- when its queue has quota, the Workload is admitted (QuotaReserved and Admitted conditions)
  and Kueue unsuspends the Job; a Job suspended by someone else while admitted is
  unsuspended again (Kueue's reconciler starts an admitted Job), which is why nothing but
  Kueue may flip `spec.suspend` of such a Job;
- on preemption it evicts the Workload (Evicted, reason Preempted), suspends the Job and
  requeues the Workload; with `spec.active: false` it evicts it (reason Deactivated),
  suspends the Job and does not requeue it until `spec.active` is true again.

Only this much of Kueue is modelled: no ClusterQueues, flavors or resource accounting; a
queue either has quota (`quota[queue] = True`) or not.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes.client.exceptions import ApiException

from .cluster import NAMESPACE, ClusterApi

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
GROUP, VERSION, PLURAL = "kueue.x-k8s.io", "v1beta1", "workloads"

WORKLOAD_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "workloads.kueue.x-k8s.io"},
    "spec": {
        "group": GROUP, "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "workload", "kind": "Workload",
                  "listKind": "WorkloadList", "shortNames": ["wl"]},
        "versions": [{
            "name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object",
                                           "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}


class KueueMock:
    """Runs Kueue's admission loop against the emulator in a background thread."""

    def __init__(self, api: ClusterApi) -> None:
        self.api = api
        self.quota: dict[str, bool] = {}
        self._preempt: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[BaseException] = []

    def __enter__(self) -> KueueMock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self.errors, self.errors

    def preempt(self, job_name: str) -> None:
        """A higher-priority workload needs the quota: evict this Job's Workload."""
        self._preempt.add(job_name)

    def workload(self, job_name: str) -> dict[str, Any] | None:
        job = self.api.raw_job(job_name)
        return self._workload_of(job, self._workloads())

    # --- the loop ---

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self._step()
            except ApiException as error:
                if error.status not in (404, 409):  # raced with a deletion or an update
                    self.errors.append(error)
            except Exception as error:  # surfaced by __exit__
                self.errors.append(error)
                return

    def _workloads(self) -> list[dict[str, Any]]:
        return self.api.custom.list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL)["items"]

    @staticmethod
    def _workload_of(job: dict[str, Any], workloads: list[dict[str, Any]]) -> dict | None:
        uid = job["metadata"]["uid"]
        return next((w for w in workloads if any(
            o.get("uid") == uid and o.get("controller")
            for o in w["metadata"].get("ownerReferences") or [])), None)

    def _step(self) -> None:
        workloads = self._workloads()
        for item in self.api.batch.list_namespaced_job(NAMESPACE).items:
            job = self.api.raw_job(item.metadata.name)
            queue = (job["metadata"].get("labels") or {}).get(QUEUE_LABEL)
            if not queue:
                continue
            workload = self._workload_of(job, workloads)
            if workload is None:
                self._create_workload(job, queue)
                continue
            if _finished(job):
                continue
            self._reconcile(job, workload, queue)

    def _create_workload(self, job: dict[str, Any], queue: str) -> None:
        meta = job["metadata"]
        self.api.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload",
            "metadata": {"name": f"job-{meta['name']}-{meta['uid'][:5]}", "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"queueName": queue, "active": True, "podSets": [{
                "name": "main", "count": job["spec"].get("parallelism", 1),
                "template": job["spec"]["template"]}]},
        })

    def _reconcile(self, job: dict[str, Any], workload: dict[str, Any], queue: str) -> None:
        name = job["metadata"]["name"]
        admitted = _is_true(workload, "Admitted")
        active = (workload.get("spec") or {}).get("active", True)
        suspended = bool(job["spec"].get("suspend"))
        if admitted and not active:
            self._evict(workload, name, "Deactivated", "The workload is deactivated")
        elif admitted and name in self._preempt:
            self._preempt.discard(name)
            self._evict(workload, name, "Preempted", "Preempted to accommodate a workload")
        elif admitted and suspended:
            self._set_suspend(name, False)  # an admitted Job runs: Kueue starts it again
        elif not admitted and active and self.quota.get(queue):
            self._set_status(workload, [
                _condition("QuotaReserved", "True", "QuotaReserved", f"Quota reserved in {queue}"),
                _condition("Admitted", "True", "Admitted", "The workload is admitted"),
                _condition("Evicted", "False", "Admitted", "")])
            self._set_suspend(name, False)

    def _evict(self, workload: dict[str, Any], job_name: str, reason: str, message: str) -> None:
        self._set_status(workload, [
            _condition("Evicted", "True", reason, message),
            _condition("QuotaReserved", "False", "Pending", message),
            _condition("Admitted", "False", "NoReservation", message)])
        self._set_suspend(job_name, True)

    def _set_status(self, workload: dict[str, Any], conditions: list[dict[str, Any]]) -> None:
        self.api.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, PLURAL, workload["metadata"]["name"],
            {"status": {"conditions": conditions}})

    def _set_suspend(self, job_name: str, suspend: bool) -> None:
        self.api.batch.patch_namespaced_job(job_name, NAMESPACE, {"spec": {"suspend": suspend}})


def _condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


def _is_true(obj: dict[str, Any], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _finished(job: dict[str, Any]) -> bool:
    return _is_true(job, "Complete") or _is_true(job, "Failed")
