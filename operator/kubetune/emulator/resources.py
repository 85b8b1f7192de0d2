"""Which resources the emulator serves: the built-ins the operator needs, plus every CRD.

A `ResourceType` is one (group, version, plural) endpoint. Objects are stored per
(group, plural), not per version, so a CRD served in two versions shows the same objects
through both, as a real API server without conversion webhooks does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

StorageKey = tuple[str, str]  # (group, plural): where objects of a resource live


@dataclass(frozen=True)
class ResourceType:
    """One served resource endpoint and what discovery says about it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    # Columns for `kubectl get` (CRD additionalPrinterColumns): name, type, jsonPath.
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> StorageKey:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _core(plural: str, kind: str, namespaced: bool = True, *, status: bool = False,
          short: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, kind.lower(), short, (), status)


def _grouped(group: str, version: str, plural: str, kind: str, *, status: bool = False,
             short: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(group, version, plural, kind, True, kind.lower(), short, (), status)


CUSTOM_RESOURCE_DEFINITIONS = ResourceType(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
    namespaced=False, singular="customresourcedefinition", short_names=("crd", "crds"),
    has_status=True,
)
NAMESPACES = _core("namespaces", "Namespace", namespaced=False, status=True, short=("ns",))

# The built-in resources that the operator, the local executor and kubectl touch.
BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES,
    CUSTOM_RESOURCE_DEFINITIONS,
    _core("configmaps", "ConfigMap", short=("cm",)),
    _core("secrets", "Secret"),
    _core("services", "Service", status=True, short=("svc",)),
    _core("pods", "Pod", status=True, short=("po",)),
    _core("events", "Event", short=("ev",)),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", status=True, short=("pvc",)),
    _core("serviceaccounts", "ServiceAccount", short=("sa",)),
    _grouped("events.k8s.io", "v1", "events", "Event", short=("ev",)),
    _grouped("batch", "v1", "jobs", "Job", status=True),
    _grouped("coordination.k8s.io", "v1", "leases", "Lease"),
)


def resource_types_from_crd(crd: dict[str, Any]) -> Iterator[ResourceType]:
    """Yield one `ResourceType` per served version of a CustomResourceDefinition."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    plural = names["plural"]
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        columns = tuple(version.get("additionalPrinterColumns") or ())
        yield ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=plural,
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            has_status="status" in (version.get("subresources") or {}),
            printer_columns=columns,
        )
