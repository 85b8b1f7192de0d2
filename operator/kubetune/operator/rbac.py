"""Every Kubernetes API permission the operator uses, in one list.

The Helm chart's ClusterRole/Role is tested against this list, and `kube.py` is tested to
make no call outside it, so a new API call without RBAC fails the tests, not the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    api_group: str
    resource: str
    verbs: tuple[str, ...]


WATCH = ("get", "list", "watch")

PERMISSIONS: tuple[Permission, ...] = (
    # The custom resources: watched, annotated by kopf (patch), EvalJobs created from
    # FinetuneJobs' spec.evaluation.
    Permission("kubetune.io", "finetunejobs", (*WATCH, "patch")),
    Permission("kubetune.io", "finetunejobs/status", ("get", "patch")),
    Permission("kubetune.io", "evaljobs", (*WATCH, "create", "patch")),
    Permission("kubetune.io", "evaljobs/status", ("get", "patch")),
    # Children (Jobs, ConfigMaps, Services, a FinetuneJob's EvalJob) carry blockOwnerDeletion on
    # their owner; the OwnerReferencesPermissionEnforcement admission plugin (on by default in
    # OpenShift) then requires `update` on the owner's finalizers subresource.
    Permission("kubetune.io", "finetunejobs/finalizers", ("update",)),
    Permission("kubetune.io", "evaljobs/finalizers", ("update",)),
    # Runtime templates: only read (a job resolves against one; jobs wait for a missing one).
    Permission("kubetune.io", "finetuneruntimes", WATCH),
    Permission("kubetune.io", "clusterfinetuneruntimes", WATCH),
    # Children: trainer config, the training Job, a headless Service for multi-node.
    Permission("", "configmaps", (*WATCH, "create", "patch", "delete")),
    Permission("", "services", (*WATCH, "create", "patch", "delete")),
    Permission("batch", "jobs", (*WATCH, "create", "patch", "delete")),
    # Pods are only read: phase, exit codes, termination messages, scheduling failures.
    Permission("", "pods", WATCH),
    # Kueue (when installed): a user's suspend of a queued job deactivates its Workload, the
    # way Kueue documents for stopping a workload, instead of fighting Kueue over Job.suspend.
    Permission("kueue.x-k8s.io", "workloads", ("list", "patch")),
    # Kubernetes Events for each transition (kopf posts core/v1 Events).
    Permission("", "events", ("create", "patch")),
    Permission("events.k8s.io", "events", ("create", "patch")),
    # kopf's peering: a standby replica takes over when the active one stops.
    Permission("kopf.dev", "kopfpeerings", (*WATCH, "patch")),
    Permission("kopf.dev", "clusterkopfpeerings", (*WATCH, "patch")),
)

POLICY_PERMISSIONS: tuple[Permission, ...] = (
    # ClusterFinetunePolicies and the namespace labels their namespaceSelectors match: both
    # cluster-scoped, so a ClusterRole of their own, read-only, even when the operator
    # otherwise has Roles in watched namespaces only.
    Permission("kubetune.io", "clusterfinetunepolicies", WATCH),
    Permission("", "namespaces", WATCH),
)

SERVING_PERMISSIONS: tuple[Permission, ...] = (
    # output.serving.create (chart value serving.create): the KServe object of a job whose
    # evaluation passed; created and read back, never changed or deleted (the garbage
    # collector deletes it with its FinetuneJob).
    Permission("serving.kserve.io", "inferenceservices", ("get", "create")),
    Permission("serving.kserve.io", "llminferenceservices", ("get", "create")),
)

WEBHOOK_PERMISSIONS: tuple[Permission, ...] = (
    # The admission webhook (chart value webhook.enabled) asks whether a job's requester may
    # get what the job names; cluster-scoped, granted only when the webhook is on.
    Permission("authorization.k8s.io", "subjectaccessreviews", ("create",)),
)
