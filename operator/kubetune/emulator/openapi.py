"""OpenAPI documents for custom resources: `/openapi/v3/apis/<g>/<v>` and `/openapi/v2`.

kube-apiserver publishes each served CRD version's `openAPIV3Schema` as a component named
after the reversed group (`io.kubetune.v1alpha1.FinetuneJob`), tagged with
`x-kubernetes-group-version-kind`, with `apiVersion`, `kind` and `metadata` (a `$ref` to
ObjectMeta) described as for every kind; the List kind too (apiextensions-apiserver
pkg/controller/openapi/builder). `kubectl explain` (1.32) reads OpenAPI v3: the index,
then the group version's document, and finds the kind by that tag. OpenAPI v2 is one
Swagger 2.0 document of all groups; it is served as JSON only: kubectl asks for v2 in
protobuf (client-go discovery `OpenAPISchema`), gets 406 Not Acceptable, and uses v3.

Built-in kinds are listed with one PATCH operation each (kubectl reads the
`fieldValidation` parameter there) but without schemas, so `kubectl explain pod` is not
served. ObjectMeta is a short version of the real one (the fields kubetune users set).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from kubetune.emulator.resources import ResourceType

Object = dict[str, Any]
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    f"unrecognized values. More info: {_CONVENTIONS}#resources")
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    f"CamelCase. More info: {_CONVENTIONS}#types-kinds")
_METADATA_DOC = f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"
_LIST_METADATA_DOC = f"Standard list metadata. More info: {_CONVENTIONS}#metadata"


def _string(description: str) -> Object:
    return {"type": "string", "description": description}


def _string_map(description: str) -> Object:
    return {"type": "object", "description": description,
            "additionalProperties": {"type": "string", "default": ""}}


_META_SCHEMAS: dict[str, Object] = {
    OBJECT_META: {
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which "
                       "includes all objects users must create.",
        "properties": {
            "name": _string("Name must be unique within a namespace. Cannot be updated."),
            "generateName": _string("GenerateName is an optional prefix, used by the server, "
                                    "to generate a unique name ONLY IF the Name field has not "
                                    "been provided."),
            "namespace": _string("Namespace defines the space within which each name must be "
                                 "unique. Cannot be updated."),
            "labels": _string_map("Map of string keys and values that can be used to organize "
                                  "and categorize (scope and select) objects."),
            "annotations": _string_map("Annotations is an unstructured key value map stored with "
                                       "a resource that may be set by external tools to store "
                                       "and retrieve arbitrary metadata."),
            "uid": _string("UID is the unique in time and space value for this object. "
                           "Populated by the system. Read-only."),
            "resourceVersion": _string("An opaque value that represents the internal version of "
                                       "this object, used for optimistic concurrency."),
            "generation": {"type": "integer", "format": "int64",
                           "description": "A sequence number representing a specific generation "
                                          "of the desired state. Populated by the system."},
            "creationTimestamp": {"type": "string", "format": "date-time",
                                  "description": "The server time when this object was created."},
            "deletionTimestamp": {"type": "string", "format": "date-time",
                                  "description": "The time after which this resource will be "
                                                 "deleted; set by the server on a graceful delete."},
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""},
                           "description": "Must be empty before the object is deleted from the "
                                          "registry."},
            "ownerReferences": {"type": "array", "items": {"type": "object"},
                                "description": "List of objects depended by this object; the "
                                               "garbage collector removes it once they are gone."},
        },
    },
    LIST_META: {
        "type": "object",
        "description": "ListMeta describes metadata that synthetic resources must have.",
        "properties": {
            "resourceVersion": _string("String that identifies the server's internal version "
                                       "of this object."),
            "continue": _string("Set when the list has more items."),
        },
    },
}


def component_name(group: str, version: str, kind: str) -> str:
    """`kubetune.io`, `v1alpha1`, `FinetuneJob` -> `io.kubetune.v1alpha1.FinetuneJob`."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _ref(name: str, prefix: str) -> Object:
    return {"$ref": f"{prefix}{name}"}


def crd_components(crd: Object, version: str, ref_prefix: str) -> dict[str, Object]:
    """The kind and its List, as kube-apiserver publishes a CRD version's schema."""
    spec = crd.get("spec") or {}
    group, names = spec.get("group", ""), spec.get("names") or {}
    served = next((v for v in spec.get("versions") or [] if v.get("name") == version), None)
    if served is None or not names.get("kind"):
        return {}
    kind = names["kind"]
    list_kind = names.get("listKind") or f"{kind}List"
    gvk = [{"group": group, "version": version, "kind": kind}]
    schema = copy.deepcopy(((served.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object"})
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = _string(_API_VERSION_DOC)
    properties["kind"] = _string(_KIND_DOC)
    properties["metadata"] = {"allOf": [_ref(OBJECT_META, ref_prefix)], "description": _METADATA_DOC}
    schema["x-kubernetes-group-version-kind"] = gvk
    item = component_name(group, version, kind)
    listing = {
        "type": "object",
        "description": f"{list_kind} is a list of {kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": _string(_API_VERSION_DOC),
            "kind": _string(_KIND_DOC),
            "metadata": {"allOf": [_ref(LIST_META, ref_prefix)], "description": _LIST_METADATA_DOC},
            "items": {"type": "array", "items": _ref(item, ref_prefix),
                      "description": f"List of {names.get('plural', kind.lower())}."},
        },
        "x-kubernetes-group-version-kind": [{**gvk[0], "kind": list_kind}],
    }
    return {item: schema, component_name(group, version, list_kind): listing}


def _served_versions(crd: Object) -> list[str]:
    return [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served", True)]


def _meta_schemas() -> dict[str, Object]:
    return copy.deepcopy(_META_SCHEMAS)


def add_crd_schemas_v3(document: Object, crds: Iterable[Object], group: str, version: str) -> Object:
    """Fill a group version's v3 document (from discovery) with its CRDs' schemas."""
    schemas: dict[str, Object] = {}
    for crd in crds:
        if (crd.get("spec") or {}).get("group") == group and version in _served_versions(crd):
            schemas.update(crd_components(crd, version, "#/components/schemas/"))
    if schemas:
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            {**_meta_schemas(), **schemas})
    return document


def _v2_schema(schema: Any) -> Any:
    """Swagger 2.0 has no `nullable`, `oneOf`/`anyOf` or `allOf` next to a description's
    siblings in kubectl's v2 reader: drop what v2 cannot say (as kube-apiserver does)."""
    if isinstance(schema, list):
        return [_v2_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: _v2_schema(value) for key, value in schema.items()
            if key not in ("nullable", "oneOf", "anyOf", "not")}


def openapi_v2(types: Iterable[ResourceType], crds: Iterable[Object]) -> Object:
    """One Swagger 2.0 document: every served CRD version's definitions, plus the paths."""
    definitions: dict[str, Object] = _meta_schemas()
    for crd in crds:
        for version in _served_versions(crd):
            definitions.update(_v2_schema(crd_components(crd, version, "#/definitions/")))
    paths: dict[str, Object] = {}
    for rtype in types:
        prefix = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
        scope = "namespaces/{namespace}/" if rtype.namespaced else ""
        paths[f"{prefix}/{scope}{rtype.plural}/{{name}}"] = {"patch": {
            "x-kubernetes-group-version-kind": {
                "group": rtype.group, "version": rtype.version, "kind": rtype.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "type": "string",
                            "uniqueItems": True}],
            "responses": {"200": {"description": "OK"}},
        }}
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "definitions": definitions}
