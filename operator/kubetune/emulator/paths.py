"""Splitting a Kubernetes API URL path into what it addresses.

    /api/v1/namespaces/ns/configmaps/name
    /apis/batch/v1/namespaces/ns/jobs/name/status
    /apis/kubetune.io/v1alpha1/finetunejobs            (all namespaces)
    /api/v1/namespaces/name/status                      (a Namespace's own status)
    /api/v1/watch/namespaces/ns/pods                    (the legacy watch prefix)

Discovery paths (`/api`, `/api/v1`, `/apis/<group>/<version>`) address no resource and
are left to kmock.
"""

from __future__ import annotations

from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class ResourcePath:
    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    legacy_watch: bool = False


def parse_resource_path(path: str) -> ResourcePath | None:
    """The resource a path addresses, or None for discovery and non-API paths."""
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) >= 2 and segments[0] == "api":
        group, version, rest = "", segments[1], segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        return None
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    if not rest:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    return ResourcePath(
        group=group,
        version=version,
        plural=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        subresource="/".join(rest[2:]) or None,
        legacy_watch=legacy_watch,
    )
