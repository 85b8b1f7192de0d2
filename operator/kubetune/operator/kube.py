"""The one module that talks to the Kubernetes API.

Async HTTP (aiohttp, as kopf itself uses) with the credentials the `kubernetes` package
loads (in-cluster service account or kubeconfig; tokens are re-read through its refresh
hook). A sync client in worker threads cost four times the CPU per call and made a burst
of new jobs queue behind the thread pool. Each method declares the permission it uses
(`@uses`), and a test checks those against `rbac.PERMISSIONS`.

Every request is retried through what a real API server answers under load or during an
upgrade (429 with Retry-After from priority and fairness, 500, 502, 503, 504, a dropped
connection), with capped exponential back-off and full jitter, never sooner than the
server's Retry-After. Retrying a create is safe: children have deterministic names, so a
create whose first reply was lost comes back 409 AlreadyExists and the child is read
instead. A status patch that meets a 409 Conflict re-reads the object and re-applies what
still moves the status forward (`guard`), so a status is never written backwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import kubernetes

from ..api.resources import GROUP, RESOURCES, VERSION
from .labels import MANAGED_BY, MANAGED_BY_VALUE

F = TypeVar("F", bound=Callable[..., Any])
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
MERGE_PATCH = "application/merge-patch+json"
_PLURALS = {r.kind: r.plural for r in RESOURCES.values()}
_COLLECTIONS = {  # kind -> (API prefix, plural)
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "Pod": ("/api/v1", "pods"),
    "Job": ("/apis/batch/v1", "jobs"),
    **{kind: (f"/apis/{GROUP}/{VERSION}", plural) for kind, plural in _PLURALS.items()},
    "Workload": ("/apis/kueue.x-k8s.io/v1beta1", "workloads"),
    "Namespace": ("/api/v1", "namespaces"),
    # KServe (output.serving.create): the versions kubetune.serving writes.
    "InferenceService": ("/apis/serving.kserve.io/v1beta1", "inferenceservices"),
    "LLMInferenceService": ("/apis/serving.kserve.io/v1alpha1", "llminferenceservices"),
}


SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
USER_AGENT = "kubetune-operator"
RETRYABLE = frozenset({429, 500, 502, 503, 504})
StatusGuard = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


class ApiError(Exception):
    """A request the API server refused; `status` is the HTTP code (0: no reply at all)."""

    def __init__(self, status: int, method: str, path: str, message: str,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message
        """The server's own explanation (Status.message)."""
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one request is retried before its caller sees the error
    (the reconcile then retries the whole job later, with its own growing delay)."""

    attempts: int = 6
    base_seconds: float = 0.2
    cap_seconds: float = 10.0
    retry_after_cap_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential back-off, but never sooner than the server asked."""
        backoff = random.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** attempt))
        if retry_after is not None:
            return max(backoff, min(retry_after, self.retry_after_cap_seconds))
        return backoff


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (kube-apiserver sends whole seconds, never an HTTP date)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def uses(api_group: str, resource: str, verb: str) -> Callable[[F], F]:
    """Declare the API permission a method needs (collected by the RBAC test)."""
    def mark(method: F) -> F:
        method.__dict__.setdefault("permissions", []).append((api_group, resource, verb))
        return method
    return mark


def path_of(kind: str, namespace: str | None, name: str | None = None,
            subresource: str | None = None) -> str:
    prefix, plural = _COLLECTIONS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
    return "/".join(p for p in (path, name, subresource) if p)


class Kube:
    """Kubernetes API calls of the operator. The HTTP session is opened lazily in the event
    loop that uses it, and closed by `aclose()` in that loop."""

    def __init__(self, configuration: kubernetes.client.Configuration,
                 connections: int = 32, retry: RetryPolicy | None = None) -> None:
        self.configuration = configuration
        self.connections = connections
        self.retry = retry or RetryPolicy()
        self.on_reply: Callable[[str, str], None] | None = None
        """Called with (verb, HTTP code or "connection") for every reply (metrics)."""
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In a pod: its service account; elsewhere: KUBECONFIG or the given file."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(config_file=kubeconfig,
                                               client_configuration=configuration)
        return cls(configuration)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self) -> ssl.SSLContext | bool:
        config = self.configuration
        if not config.host.startswith("https"):
            return False
        if not config.verify_ssl:
            return False
        context = ssl.create_default_context(cafile=config.ssl_ca_cert)
        if config.cert_file:
            context.load_cert_chain(config.cert_file, config.key_file)
        return context

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, ssl=self._ssl())
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    async def _request(self, method: str, path: str, body: Any = None,
                       content_type: str = "application/json", *, verb: str) -> dict[str, Any]:
        """One API call, retried through transient failures (see the module docstring)."""
        for attempt in range(self.retry.attempts):
            try:
                return await self._request_once(method, path, body, content_type, verb)
            except ApiError as error:
                if error.status not in RETRYABLE and error.status != 0:
                    raise
                if attempt == self.retry.attempts - 1:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, error.retry_after))
        raise AssertionError("unreachable")

    async def _request_once(self, method: str, path: str, body: Any, content_type: str,
                            verb: str) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        # Through the `kubernetes` package, so rotated service-account tokens are re-read.
        # auth_settings() knows where each client version keeps the token (v30+ stores it
        # under "BearerToken", so asking for "authorization" found none and every request
        # went out anonymous: 403 on any cluster that enforces RBAC).
        for setting in self.configuration.auth_settings().values():
            if setting["in"] == "header" and setting["value"]:
                headers[setting["key"]] = setting["value"]
        if body is not None:
            headers["Content-Type"] = content_type
        url = self.configuration.host.rstrip("/") + path
        try:
            async with self._session_now().request(method, url, json=body,
                                                   headers=headers) as reply:
                text = await reply.text()
                self._observe(verb, str(reply.status))
                if reply.status >= 400:
                    raise ApiError(reply.status, method, path, _message(text),
                                   _retry_after(reply.headers.get("Retry-After")))
                return json.loads(text)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as error:
            self._observe(verb, "connection")
            raise ApiError(0, method, path, f"no reply: {error!r}") from error

    def _observe(self, verb: str, code: str) -> None:
        if self.on_reply is not None:
            self.on_reply(verb, code)

    # --- writes ---------------------------------------------------------------------------

    @uses("", "configmaps", "create")
    @uses("", "services", "create")
    @uses("batch", "jobs", "create")
    @uses(GROUP, "evaljobs", "create")
    # Children's ownerReferences set blockOwnerDeletion: with OwnerReferencesPermissionEnforcement
    # (OpenShift's default) that needs `update` on the owner's finalizers, else every create is 403.
    @uses(GROUP, "finetunejobs/finalizers", "update")
    @uses(GROUP, "evaljobs/finalizers", "update")
    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create a child object; None when it already exists (a restart or a retry)."""
        path = path_of(obj["kind"], obj["metadata"]["namespace"])
        try:
            return await self._request("POST", path, obj, verb="create")
        except ApiError as error:
            if error.status == 409:
                return None
            raise

    @uses("serving.kserve.io", "inferenceservices", "create")
    @uses("serving.kserve.io", "llminferenceservices", "create")
    @uses("serving.kserve.io", "inferenceservices", "get")
    @uses("serving.kserve.io", "llminferenceservices", "get")
    async def create_serving(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create a KServe object, or read the one holding its name (for its owner); only
        with the chart's serving.create, which grants these."""
        created = await self.create(obj)
        if created is not None:
            return created
        meta = obj["metadata"]
        existing = await self.get(obj["kind"], meta["namespace"], meta["name"])
        if existing is None:  # deleted between the two calls: the next reconcile creates it
            raise ApiError(409, "GET", path_of(obj["kind"], meta["namespace"], meta["name"]),
                           "created by someone else and deleted again")
        return existing

    @uses(GROUP, "finetunejobs/status", "patch")
    @uses(GROUP, "evaljobs/status", "patch")
    @uses(GROUP, "finetunejobs", "get")
    @uses(GROUP, "evaljobs", "get")
    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any],
                           guard: StatusGuard | None = None) -> dict[str, Any] | None:
        """Merge-patch the status subresource (null values delete fields); returns the
        whole status the server has afterwards. On 409 Conflict: read the object again, let
        `guard(current, patch)` drop what would move its status backwards, and apply the
        rest. A job deleted in the meantime has no status to write: not an error (None)."""
        for attempt in range(self.retry.attempts):
            try:
                reply = await self._request("PATCH", path_of(kind, namespace, name, "status"),
                                            {"status": status}, MERGE_PATCH, verb="patch")
                return reply.get("status") or {}
            except ApiError as error:
                if error.status == 404:
                    return None
                if error.status != 409 or attempt == self.retry.attempts - 1:
                    raise
            try:
                current = await self._request("GET", path_of(kind, namespace, name), verb="get")
            except ApiError as error:
                if error.status == 404:
                    return None
                raise
            if guard is not None:
                status = guard(current.get("status") or {}, status)
            if not status:
                return current.get("status") or {}
        return None

    @uses("batch", "jobs", "patch")
    async def set_job_suspended(self, namespace: str, name: str, suspend: bool) -> None:
        await self._request("PATCH", path_of("Job", namespace, name),
                            {"spec": {"suspend": suspend}}, MERGE_PATCH, verb="patch")

    @uses("kueue.x-k8s.io", "workloads", "patch")
    async def set_workload_active(self, namespace: str, name: str, active: bool) -> None:
        """Kueue's documented switch to stop (evict, not requeue) or restart a workload."""
        await self._request("PATCH", path_of("Workload", namespace, name),
                            {"spec": {"active": active}}, MERGE_PATCH, verb="patch")

    @uses("batch", "jobs", "delete")
    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete this very Job (uid precondition) once its pods are gone (Foreground):
        the next gang attempt's Job reuses the name and must not meet the old pods."""
        try:
            await self._request("DELETE", path_of("Job", namespace, name),
                                {"propagationPolicy": "Foreground", "preconditions": {"uid": uid}},
                                verb="delete")
        except ApiError as error:
            if error.status not in (404, 409):  # gone already, or a newer Job by that name
                raise

    @uses("", "configmaps", "patch")
    @uses("", "services", "patch")
    async def set_controller(self, obj: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
        """Make `owner` the object's only ownerReference (a Job taking over its ConfigMap).

        The resourceVersion in the patch makes it conditional: a 409 if the object changed
        (or was deleted and recreated) since it was read."""
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": [owner],
                              "resourceVersion": meta["resourceVersion"]}}
        return await self._request("PATCH", path_of(obj["kind"], meta["namespace"], meta["name"]),
                                   patch, MERGE_PATCH, verb="patch")

    # --- reads ----------------------------------------------------------------------------

    @uses("batch", "jobs", "list")
    @uses("", "pods", "list")
    @uses("", "configmaps", "list")
    @uses("", "services", "list")
    async def list_managed(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Jobs, Pods, ConfigMaps or Services that kubetune manages, in one namespace or all."""
        query = urlencode({"labelSelector": MANAGED_SELECTOR})
        reply = await self._request("GET", f"{path_of(kind, namespace)}?{query}", verb="list")
        return reply.get("items", [])

    @uses(GROUP, "finetuneruntimes", "list")
    @uses(GROUP, "clusterfinetuneruntimes", "list")
    async def list_runtimes(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """ClusterFinetuneRuntimes, or FinetuneRuntimes in one namespace (None: all)."""
        reply = await self._request("GET", path_of(kind, namespace), verb="list")
        for item in reply.get("items", []):
            item.setdefault("kind", kind)  # list items carry no kind
        return reply.get("items", [])

    @uses(GROUP, "clusterfinetunepolicies", "list")
    @uses("", "namespaces", "list")
    async def list_all(self, kind: str) -> list[dict[str, Any]]:
        """Every ClusterFinetunePolicy or Namespace (cluster-scoped); none when the policy CRD
        is not installed (404)."""
        try:
            reply = await self._request("GET", path_of(kind, None), verb="list")
        except ApiError as error:
            if error.status == 404:
                return []
            raise
        return reply.get("items", [])

    @uses("kueue.x-k8s.io", "workloads", "list")
    async def workload_of(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        """The Kueue Workload that a Job owns (Kueue creates one per Job, owned by it), or
        None: not created yet, or Kueue is not installed (404)."""
        try:
            reply = await self._request("GET", path_of("Workload", namespace), verb="list")
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        for workload in reply.get("items", []):
            owners = (workload.get("metadata") or {}).get("ownerReferences") or []
            if any(o.get("uid") == job_uid and o.get("controller") for o in owners):
                return workload
        return None

    @uses("", "configmaps", "get")
    @uses("", "services", "get")
    @uses("batch", "jobs", "get")
    @uses(GROUP, "evaljobs", "get")
    @uses("", "namespaces", "get")
    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A child object, or None when there is none."""
        try:
            return await self._request("GET", path_of(kind, namespace, name), verb="get")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    @uses(GROUP, "finetunejobs", "get")
    @uses(GROUP, "evaljobs", "get")
    async def still_exists(self, kind: str, namespace: str, name: str, uid: str) -> bool:
        """Whether this very object (same uid) is still there and not being deleted.

        Watch streams of different resources are not ordered: the garbage collector's
        deletion of a Job can be seen before its owner's deletion. Asking before creating
        children keeps a deleted job from getting new ones.
        """
        try:
            meta = (await self._request("GET", path_of(kind, namespace, name),
                                        verb="get"))["metadata"]
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return meta.get("uid") == uid and not meta.get("deletionTimestamp")


    # --- access reviews (the admission webhook) ---------------------------------------------

    @uses("authorization.k8s.io", "subjectaccessreviews", "create")
    async def review_access(self, review: dict[str, Any]) -> bool:
        """Create a SubjectAccessReview (admission/review.py builds it); whether it is allowed.

        The answer is in the reply's status; a review is never stored, so a lost reply is
        simply asked again."""
        reply = await self._request("POST", SUBJECT_ACCESS_REVIEWS, review, verb="create")
        status = reply.get("status") or {}
        return bool(status.get("allowed")) and not status.get("denied")


def _message(text: str) -> str:
    """The Status message of an error reply, or its text (429s of priority and fairness
    are plain text, not a Status)."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    return str(data.get("message", "")) if isinstance(data, dict) else str(data)


def permissions_used() -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) a Kube method declares."""
    found = set()
    for attribute in vars(Kube).values():
        for permission in getattr(attribute, "permissions", []):
            found.add(permission)
    return found
