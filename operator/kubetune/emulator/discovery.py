"""Discovery documents (`/api`, `/apis`, `/apis/<g>/<v>`) and a minimal OpenAPI v3 index.

kmock renders discovery too, but names the core group version "/v1" and repeats short
names on subresources, which makes kubectl reject `kubectl get ns`; these builders are
used by `ApiServerEmulator`'s overrides of kmock's discovery handlers instead.

kubectl checks OpenAPI v3 to learn whether the server validates fields itself
(`fieldValidation` on PATCH); without it, it would demand an OpenAPI v2 protobuf document
for client-side validation. The v3 documents here only declare that parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kubetune.emulator.resources import ALL_VERBS, ResourceType

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Sort key, highest first as kube-apiserver prefers: v2 > v1 > v1beta2 > v1alpha1."""
    match = _VERSION.match(version)
    if not match:
        return (0, 0, 0)
    major, stage, minor = match.groups()
    stage_rank = {None: 3, "beta": 2, "alpha": 1}[stage]
    return (stage_rank, int(major), int(minor or 0))


def _group_versions(types: Iterable[ResourceType]) -> dict[str, list[str]]:
    versions: dict[str, set[str]] = {}
    for rtype in types:
        versions.setdefault(rtype.group, set()).add(rtype.version)
    return {group: sorted(found, key=version_priority, reverse=True)
            for group, found in sorted(versions.items())}


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


# The release the emulator answers as (kubectl warns when client and server are >1 minor apart).
SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.2", "gitTreeState": "clean",
                  "gitCommit": "67a30c0adcf52bd3f56ff0893ce19966be12991f",
                  "buildDate": "2025-02-12T21:19:47Z", "goVersion": "go1.23.6", "compiler": "gc",
                  "platform": "linux/amd64"}


def server_version() -> dict[str, Any]:
    """`GET /version`: a current Kubernetes release (kmock reports an old k3s)."""
    return dict(SERVER_VERSION)


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "apiVersion": "v1", "versions": ["v1"],
            "serverAddressByClientCIDRs": []}


def api_group_list(types: Iterable[ResourceType]) -> dict[str, Any]:
    groups = [_api_group(g, v) for g, v in _group_versions(types).items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(types: Iterable[ResourceType], group: str) -> dict[str, Any] | None:
    versions = _group_versions(types).get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, versions)}


def api_resource_list(types: Iterable[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    selected = [t for t in types if (t.group, t.version) == (group, version)]
    if not selected:
        return None
    resources: list[dict[str, Any]] = []
    for rtype in sorted(selected, key=lambda t: t.plural):
        resources.append({
            "name": rtype.plural, "singularName": rtype.singular or rtype.kind.lower(),
            "namespaced": rtype.namespaced, "kind": rtype.kind, "verbs": list(ALL_VERBS),
            "shortNames": list(rtype.short_names), "categories": list(rtype.categories),
        })
        if rtype.has_status:
            resources.append({"name": f"{rtype.plural}/status", "singularName": "",
                              "namespaced": rtype.namespaced, "kind": rtype.kind,
                              "verbs": ["get", "patch", "update"]})
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_index(types: Iterable[ResourceType]) -> dict[str, Any]:
    paths = {
        _gv_path(group, version): {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}"}
        for group, versions in _group_versions(types).items() for version in versions
    }
    return {"paths": paths}


def openapi_v3_group_version(types: Iterable[ResourceType], gv_path: str) -> dict[str, Any] | None:
    """One PATCH operation per resource, declaring the `fieldValidation` query parameter."""
    selected = [t for t in types if _gv_path(t.group, t.version) == gv_path.strip("/")]
    if not selected:
        return None
    paths: dict[str, Any] = {}
    for rtype in selected:
        scope = "namespaces/{namespace}/" if rtype.namespaced else ""
        paths[f"/{gv_path.strip('/')}/{scope}{rtype.plural}/{{name}}"] = {"patch": {
            "x-kubernetes-group-version-kind": {
                "group": rtype.group, "version": rtype.version, "kind": rtype.kind},
            "parameters": [{"name": "fieldValidation", "in": "query",
                            "schema": {"type": "string", "uniqueItems": True}}],
            "responses": {"200": {"description": "OK"}},
        }}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": {}}}
