"""The one module that talks to the Kubernetes API.

Async HTTP (aiohttp, as kopf itself uses) with the credentials the `kubernetes` package
loads (in-cluster service account or kubeconfig; tokens are re-read through its refresh
hook). A sync client in worker threads cost four times the CPU per call and made a burst
of new jobs queue behind the thread pool. Each method declares the permission it uses
(`@uses`), and a test checks those against `rbac.PERMISSIONS`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
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
}


class ApiError(Exception):
    """A request the API server refused; `status` is the HTTP code."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message
        """The server's own explanation (Status.message)."""


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
                 connections: int = 32) -> None:
        self.configuration = configuration
        self.connections = connections
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
                       content_type: str = "application/json") -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        # Through the `kubernetes` package, so rotated service-account tokens are re-read.
        token = self.configuration.get_api_key_with_prefix("authorization")
        if token:
            headers["Authorization"] = token
        if body is not None:
            headers["Content-Type"] = content_type
        url = self.configuration.host.rstrip("/") + path
        async with self._session_now().request(method, url, json=body, headers=headers) as reply:
            data = await reply.json(content_type=None)
            if reply.status >= 400:
                message = data.get("message", "") if isinstance(data, dict) else str(data)
                raise ApiError(reply.status, method, path, message)
            return data

    # --- writes ---------------------------------------------------------------------------

    @uses("", "configmaps", "create")
    @uses("", "services", "create")
    @uses("batch", "jobs", "create")
    @uses(GROUP, "evaljobs", "create")
    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create a child object; None when it already exists (a restart or a retry)."""
        path = path_of(obj["kind"], obj["metadata"]["namespace"])
        try:
            return await self._request("POST", path, obj)
        except ApiError as error:
            if error.status == 409:
                return None
            raise

    @uses(GROUP, "finetunejobs/status", "patch")
    @uses(GROUP, "evaljobs/status", "patch")
    async def patch_status(self, kind: str, namespace: str, name: str,
                           status: dict[str, Any]) -> None:
        """Merge-patch the status subresource (null values delete fields). A job deleted
        in the meantime has no status to write: that is not an error."""
        try:
            await self._request("PATCH", path_of(kind, namespace, name, "status"),
                                {"status": status}, MERGE_PATCH)
        except ApiError as error:
            if error.status != 404:
                raise

    @uses("batch", "jobs", "patch")
    async def set_job_suspended(self, namespace: str, name: str, suspend: bool) -> None:
        await self._request("PATCH", path_of("Job", namespace, name),
                            {"spec": {"suspend": suspend}}, MERGE_PATCH)

    # --- reads ----------------------------------------------------------------------------

    @uses("batch", "jobs", "list")
    @uses("", "pods", "list")
    async def list_managed(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Jobs or Pods that kubetune manages, in one namespace or all."""
        query = urlencode({"labelSelector": MANAGED_SELECTOR})
        reply = await self._request("GET", f"{path_of(kind, namespace)}?{query}")
        return reply.get("items", [])

    @uses("batch", "jobs", "get")
    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", path_of("Job", namespace, name))
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
            meta = (await self._request("GET", path_of(kind, namespace, name)))["metadata"]
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return meta.get("uid") == uid and not meta.get("deletionTimestamp")


def permissions_used() -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) a Kube method declares."""
    found = set()
    for attribute in vars(Kube).values():
        for permission in getattr(attribute, "permissions", []):
            found.add(permission)
    return found
