"""The Pod a Job controller creates from `spec.template` (pure: no I/O).

Names, labels, annotation, hostname and the `JOB_COMPLETION_INDEX` variable follow
kube-controller-manager, because the operator and users read them: `<job>-<index>-<xxxxx>`
for Indexed Jobs, `<job>-<xxxxx>` otherwise.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME = "job-name"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID = "controller-uid"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"

# kube-apiserver's alphabet for generated name suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def is_indexed(job: dict[str, Any]) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def pod_name(job_name: str, index: int | None) -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
    return f"{job_name}-{index}-{suffix}" if index is not None else f"{job_name}-{suffix}"


def pod_for_job(job: dict[str, Any], index: int | None) -> dict[str, Any]:
    """A Pod of `job` (for completion `index` when the Job is Indexed)."""
    meta = job["metadata"]
    name, uid = meta["name"], meta["uid"]
    template = copy.deepcopy(job["spec"]["template"])
    template_meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    labels = {
        **(template_meta.get("labels") or {}),
        CONTROLLER_UID: uid, LEGACY_CONTROLLER_UID: uid, JOB_NAME: name, LEGACY_JOB_NAME: name,
    }
    annotations = dict(template_meta.get("annotations") or {})
    if index is not None:
        labels[COMPLETION_INDEX] = annotations[COMPLETION_INDEX] = str(index)
        spec["hostname"] = f"{name}-{index}"
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            index_env = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
            # First, so that later variables can use $(JOB_COMPLETION_INDEX).
            container["env"] = [index_env, *container.get("env", [])]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(name, index),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": spec,
    }


def completion_index(pod: dict[str, Any]) -> int | None:
    meta = pod.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(COMPLETION_INDEX)
    if raw is None:
        raw = (meta.get("labels") or {}).get(COMPLETION_INDEX)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def controller_uid(obj: dict[str, Any], kind: str = "Job") -> str | None:
    """The uid of the object's controlling owner of `kind`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return ref.get("uid")
    return None
