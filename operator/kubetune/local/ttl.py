"""The TTL-after-finished controller's decision for one Job, as a pure function.

kube-controller-manager deletes a finished Job (condition Complete or Failed True)
`spec.ttlSecondsAfterFinished` seconds after that condition's lastTransitionTime, with
foreground propagation and the Job's uid as a precondition (kubernetes
pkg/controller/ttlafterfinished/ttlafterfinished_controller.go `processJob`, `jobFinishTime`;
https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Object = dict[str, Any]


def _finished_at(job: Object) -> datetime | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            stamp = condition.get("lastTransitionTime")
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    return None


def seconds_until_expiry(job: Object, now: datetime | None = None) -> float | None:
    """Seconds until the Job is due for deletion (<= 0: now); None if it never is (no TTL,
    not finished, or already being deleted)."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or job["metadata"].get("deletionTimestamp"):
        return None
    finished = _finished_at(job)
    if finished is None:
        return None
    return (finished.timestamp() + ttl) - (now or datetime.now(UTC)).timestamp()


def deletion_options(job: Object) -> Object:
    """The DeleteOptions the TTL controller sends."""
    return {"propagationPolicy": "Foreground", "preconditions": {"uid": job["metadata"]["uid"]}}
