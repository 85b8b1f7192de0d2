"""The one module that talks to the Kubernetes API.

A thin async wrapper over the `kubernetes` client (run in threads): create children, patch
status, patch a Job's suspend flag, list managed Jobs and Pods. Each method declares the
permission it uses (`@uses`), and a test checks those against `rbac.PERMISSIONS`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.exceptions import ApiException

from ..api.resources import GROUP, RESOURCES, VERSION
from .labels import MANAGED_BY, MANAGED_BY_VALUE

F = TypeVar("F", bound=Callable[..., Any])
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
_PLURALS = {r.kind: r.plural for r in RESOURCES.values()}


def uses(api_group: str, resource: str, verb: str) -> Callable[[F], F]:
    """Declare the API permission a method needs (collected by the RBAC test)."""
    def mark(method: F) -> F:
        method.__dict__.setdefault("permissions", []).append((api_group, resource, verb))
        return method
    return mark


class Kube:
    """Kubernetes API calls of the operator, each one awaited in a worker thread."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api_client = api_client
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.batch = kubernetes.client.BatchV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In a pod: its service account; elsewhere: KUBECONFIG or the given file."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(config_file=kubeconfig,
                                               client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        return cls(kubernetes.client.ApiClient(configuration))

    def close(self) -> None:
        self.api_client.close()

    # --- writes ---------------------------------------------------------------------------

    @uses("", "configmaps", "create")
    @uses("", "services", "create")
    @uses("batch", "jobs", "create")
    @uses(GROUP, "evaljobs", "create")
    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create a child object; None when it already exists (a restart or a retry)."""
        namespace = obj["metadata"]["namespace"]
        kind = obj["kind"]
        calls = {
            "ConfigMap": lambda: self.core.create_namespaced_config_map(
                namespace, obj, _preload_content=False),
            "Service": lambda: self.core.create_namespaced_service(
                namespace, obj, _preload_content=False),
            "Job": lambda: self.batch.create_namespaced_job(namespace, obj, _preload_content=False),
            "EvalJob": lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, _PLURALS["EvalJob"], obj, _preload_content=False),
        }
        try:
            response = await asyncio.to_thread(calls[kind])
        except ApiException as error:
            if error.status == 409:
                return None
            raise
        return json.loads(response.data)

    @uses(GROUP, "finetunejobs/status", "patch")
    @uses(GROUP, "evaljobs/status", "patch")
    async def patch_status(self, kind: str, namespace: str, name: str,
                           status: dict[str, Any]) -> None:
        """Merge-patch the status subresource (null values delete fields). A job deleted
        in the meantime has no status to write: that is not an error."""
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object_status,
                GROUP, VERSION, namespace, _PLURALS[kind], name, {"status": status},
                _preload_content=False,
            )
        except ApiException as error:
            if error.status != 404:
                raise

    @uses("batch", "jobs", "patch")
    async def set_job_suspended(self, namespace: str, name: str, suspend: bool) -> None:
        await asyncio.to_thread(
            self.batch.patch_namespaced_job, name, namespace, {"spec": {"suspend": suspend}},
            _preload_content=False,
        )

    # --- reads ----------------------------------------------------------------------------

    @uses("batch", "jobs", "list")
    @uses("", "pods", "list")
    async def list_managed(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Jobs or Pods that kubetune manages, in one namespace or all."""
        if kind == "Job":
            call = (self.batch.list_namespaced_job if namespace
                    else self.batch.list_job_for_all_namespaces)
        else:
            call = (self.core.list_namespaced_pod if namespace
                    else self.core.list_pod_for_all_namespaces)
        args = (namespace,) if namespace else ()
        response = await asyncio.to_thread(
            call, *args, label_selector=MANAGED_SELECTOR, _preload_content=False)
        return json.loads(response.data).get("items", [])

    @uses(GROUP, "finetunejobs", "get")
    @uses(GROUP, "evaljobs", "get")
    async def still_exists(self, kind: str, namespace: str, name: str, uid: str) -> bool:
        """Whether this very object (same uid) is still there and not being deleted.

        Watch streams of different resources are not ordered: the garbage collector's
        deletion of a Job can be seen before its owner's deletion. Asking before creating
        children keeps a deleted job from getting new ones.
        """
        try:
            response = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace,
                _PLURALS[kind], name, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        meta = json.loads(response.data)["metadata"]
        return meta.get("uid") == uid and not meta.get("deletionTimestamp")

    @uses("batch", "jobs", "get")
    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            response = await asyncio.to_thread(
                self.batch.read_namespaced_job, name, namespace, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return json.loads(response.data)


def permissions_used() -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) a Kube method declares."""
    found = set()
    for attribute in vars(Kube).values():
        for permission in getattr(attribute, "permissions", []):
            found.add(permission)
    return found
