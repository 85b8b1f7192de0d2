"""What the operator knows: its settings, clients, and caches of the objects it watches.

The caches are filled by watch events (kopf on.event handlers) and by one listing at
start-up, so a reconcile reads memory, not the API server.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .kube import Kube
from .metrics import Metrics
from .ownership import pods_of_job
from .settings import Settings
from .status import Fit

Key = tuple[str, str]  # (namespace, name)
FitChecker = Callable[[dict[str, Any], Any], Awaitable[Fit]]


@dataclass
class OperatorState:
    settings: Settings
    kube: Kube
    metrics: Metrics
    check_fit: FitChecker
    finetunejobs: dict[Key, dict[str, Any]] = field(default_factory=dict)
    evaljobs: dict[Key, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[Key, dict[str, Any]] = field(default_factory=dict)
    config_maps: dict[Key, dict[str, Any]] = field(default_factory=dict)
    services: dict[Key, dict[str, Any]] = field(default_factory=dict)
    """Managed children by name, whichever incarnation of a job they belong to: readers
    check the owner uid (see ownership.py)."""
    pods: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    """Pods by (namespace, Job name), then by pod name."""
    runtimes: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """Runtime templates by (kind, namespace or "" for ClusterFinetuneRuntimes, name)."""
    written: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """The status last written per (kind, namespace, name): newer than the watch cache until
    the watch event of our own write arrives."""
    locks: dict[tuple[str, str, str], asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock))
    retries: dict[tuple[str, str, str], int] = field(default_factory=dict)
    rejected: dict[tuple[str, str, str], tuple[int | None, float]] = field(default_factory=dict)
    """(generation, monotonic time before which no child create is tried again) for jobs whose
    child create the API server answered 403 or 404."""
    workload_active: dict[str, bool] = field(default_factory=dict)
    """Per Job uid: the `spec.active` its Kueue Workload was last seen or set to, so the
    Workload is looked up only when a user's suspend changes."""
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """ClusterFinetunePolicies by name (watched)."""
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    """Namespace labels by name (watched), for the policies' namespaceSelectors."""
    held: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """Jobs a policy budget holds back (kind, namespace, name) -> reason."""
    admitted: set[tuple[str, str, str]] = field(default_factory=set)
    """Jobs a budget let start: counted as running until their Job is seen."""
    background: set[asyncio.Task] = field(default_factory=set)
    """Scheduled retries and follow-up reconciles (kept so they are not garbage-collected)."""

    def bodies(self, kind: str) -> dict[Key, dict[str, Any]]:
        return self.finetunejobs if kind == "FinetuneJob" else self.evaljobs

    def current_status(self, kind: str, key: Key) -> dict[str, Any]:
        """The freshest status we know: our own last write, else the watched object's."""
        written = self.written.get((kind, *key))
        if written is not None:
            return written
        return dict((self.bodies(kind).get(key) or {}).get("status") or {})

    def pods_of(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return list(self.pods.get((namespace, job_name), {}).values())

    def pods_of_job(self, job: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The pods of this very Job (not of an earlier Job of the same name)."""
        if job is None:
            return []
        meta = job["metadata"]
        return pods_of_job(self.pods_of(meta["namespace"], meta["name"]), job)

    def children(self, kind: str) -> dict[Key, dict[str, Any]]:
        return {"Job": self.jobs, "ConfigMap": self.config_maps, "Service": self.services,
                "EvalJob": self.evaljobs}[kind]

    def forget(self, kind: str, key: Key) -> None:
        self.bodies(kind).pop(key, None)
        self.held.pop((kind, *key), None)
        self.admitted.discard((kind, *key))
        self.written.pop((kind, *key), None)
        self.retries.pop((kind, *key), None)
        self.rejected.pop((kind, *key), None)
        self.rejected.pop((f"{kind}.evaluation", *key), None)

    def runtimes_of(self, kind: str) -> list[dict[str, Any]]:
        return [obj for (k, _, _), obj in self.runtimes.items() if k == kind]
