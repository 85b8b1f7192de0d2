"""Which incarnation of a job a child object belongs to, decided by owner uid, not by name.

Child names are deterministic (`<name>-train`, `<name>-config`, ...), and a name is free again
the moment its owner is deleted, while the garbage collector removes the owner's children
asynchronously (https://kubernetes.io/docs/concepts/architecture/garbage-collection/). So after
`kubectl delete ftj x && kubectl apply -f x.yaml` the new FinetuneJob can find the old run's
Job, ConfigMap or Service under its own children's names. A child counts only when its
controller ownerReference leads to this job's uid: the job itself, or the Job this job owns
(a Job owns its ConfigMap and Service, so that ttlSecondsAfterFinished removes them with it).
Anything else is an earlier run's child: never adopted, never read into status; the job waits
until it is gone, as controller-runtime's controllers do (`metav1.IsControlledBy`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

WAITING_FOR_PREVIOUS_RUN = "WaitingForPreviousRun"


def controller_reference(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ownerReference with controller: true (Kubernetes allows at most one)."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return next((ref for ref in refs if ref.get("controller")), None)


def controller_uid(obj: dict[str, Any] | None) -> str | None:
    return (controller_reference(obj) or {}).get("uid")


def belongs_to(child: dict[str, Any] | None, owner_uids: Iterable[str | None]) -> bool:
    """Whether the child's controller is one of these objects (the job, or its own Job)."""
    uid = controller_uid(child)
    return uid is not None and uid in {u for u in owner_uids if u}


def pods_of_job(pods: Iterable[dict[str, Any]], job: dict[str, Any]) -> list[dict[str, Any]]:
    """The pods this very Job created: an earlier Job of the same name may still have some."""
    uid = (job.get("metadata") or {}).get("uid")
    return [pod for pod in pods if controller_uid(pod) == uid]


def job_owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    """A controller reference to a Job, for the ConfigMap and Service it takes over.

    blockOwnerDeletion stays false: a foreground deletion of the Job need not wait for its
    config, and setting it true would need `update` on jobs/finalizers under the
    OwnerReferencesPermissionEnforcement admission plugin."""
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": False}


def in_the_way(child: dict[str, Any], owner_kind: str) -> str:
    """The message of the WaitingForPreviousRun condition: which child, whose it is."""
    meta = child.get("metadata") or {}
    ref = controller_reference(child)
    whose = (f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})" if ref
             else "no controller")
    return (f"{child.get('kind', 'object')} {meta.get('namespace')}/{meta.get('name')} belongs "
            f"to an earlier run ({whose}), not to this {owner_kind}; waiting for it to be "
            "deleted (the garbage collector removes an earlier run's children; delete it "
            "yourself if it is not owned by a deleted object)")
