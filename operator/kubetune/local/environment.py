"""A container's environment as the kubelet builds it: `envFrom`, then `env` in order.

Values come from literals (with `$(VAR)` expansion over the variables defined before),
the downward API (`fieldRef`, `resourceFieldRef`), ConfigMaps and Secrets read through the
API. What the kubelet reports when a reference cannot be resolved is kept word for word
(`secret "x" not found`, ...), because users and the operator read those messages.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any

from .client import ApiClient, Object
from .expansion import expand

HOST_IP = "127.0.0.1"
NODE_NAME = "local"


class ContainerConfigError(Exception):
    """The container cannot be configured yet (the kubelet's CreateContainerConfigError)."""


class ObjectReader:
    """ConfigMaps and Secrets of one namespace, each read at most once per pod start."""

    def __init__(self, api: ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self._seen: dict[tuple[str, str], Object | None] = {}

    async def data(self, kind: str, name: str, optional: bool = False) -> dict[str, str] | None:
        """The decoded `data` of a ConfigMap or Secret; None if optional and missing."""
        key = (kind, name)
        if key not in self._seen:
            plural = "configmaps" if kind == "ConfigMap" else "secrets"
            self._seen[key] = await self.api.get_or_none(
                f"/api/v1/namespaces/{self.namespace}/{plural}/{name}")
        obj = self._seen[key]
        if obj is None:
            if optional:
                return None
            raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
        return decoded_data(kind, obj)

    async def value(self, kind: str, ref: dict[str, Any]) -> str | None:
        data = await self.data(kind, ref["name"], ref.get("optional", False))
        if data is None:
            return None
        if ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(
                f"couldn't find key {ref['key']} in {kind} {self.namespace}/{ref['name']}")
        return data[ref["key"]]


def decoded_data(kind: str, obj: Object) -> dict[str, str]:
    """ConfigMap `data` (+ `binaryData`), or Secret `data` base64-decoded (+ `stringData`,
    which a real API server folds into `data` on write but an emulator may keep)."""
    if kind == "ConfigMap":
        binary = {k: base64.b64decode(v).decode("utf-8", "replace")
                  for k, v in (obj.get("binaryData") or {}).items()}
        return {**binary, **(obj.get("data") or {})}
    data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    return {**data, **(obj.get("stringData") or {})}


async def container_env(reader: ObjectReader, pod: Object, container: dict[str, Any],
                        pod_ip: str) -> dict[str, str]:
    """The variables the container sees, in the container's own terms (no path rewriting)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if field in source:
                ref = source[field]
                data = await reader.data(kind, ref["name"], ref.get("optional", False)) or {}
                env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        if source is None:
            value: str | None = expand(var.get("value", ""), env)
        elif "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip)
        elif "resourceFieldRef" in source:
            value = resource_value(container, source["resourceFieldRef"]["resource"])
        elif "configMapKeyRef" in source:
            value = await reader.value("ConfigMap", source["configMapKeyRef"])
        elif "secretKeyRef" in source:
            value = await reader.value("Secret", source["secretKeyRef"])
        else:
            raise ContainerConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[name] = value
    return env


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Object, path: str, pod_ip: str) -> str:
    """The downward API's `fieldRef` for the paths a pod may ask for."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or NODE_NAME,
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": HOST_IP,
        "status.hostIPs": HOST_IP,
    }
    if path in simple:
        return simple[path]
    if match := _SUBSCRIPT.match(path):
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


def resource_value(container: dict[str, Any], resource: str) -> str:
    """`resourceFieldRef`: the container's own limit or request, else this machine's size."""
    kind, _, name = resource.partition(".")
    declared = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if declared is not None:
        return str(declared)
    if name == "cpu":
        return str(os.cpu_count() or 1)
    if name == "memory":
        return str(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return "0"
