"""What kube-apiserver does to a custom resource before validating it: prune, then default.

Ports of k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning (`Prune`: fields the
structural schema does not declare are dropped and their paths reported, which
`fieldValidation=Strict` turns into errors) and .../schema/defaulting (`Default` and
`PruneNonNullableNullsWithoutDefaults`: a missing field with a `default` gets it, deep
copied, and the new value is defaulted in turn, so `default: {}` fills its children).
See https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning
and #defaulting.
"""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]

# The ObjectMeta fields; anything else under a resource's metadata is dropped on decoding.
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})
_RESOURCE_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def prune_unknown_fields(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Drop undeclared fields from a whole resource, in place; return their paths in order."""
    pruned: list[str] = []
    _prune_resource_root(obj, schema, "", pruned)
    return pruned


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune_resource_root(obj: dict[str, Any], schema: Schema, path: str, pruned: list[str]) -> None:
    """apiVersion, kind and metadata survive at a resource's root whatever the schema says."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
            del meta[key]
            pruned.append(_child(_child(path, "metadata"), key))
    rest = {k: v for k, v in obj.items() if k not in _RESOURCE_ROOT_FIELDS}
    declared = {k: v for k, v in (schema.get("properties") or {}).items()
                if k not in _RESOURCE_ROOT_FIELDS}
    _prune(rest, {**schema, "properties": declared}, path, pruned)
    for key in [k for k in obj if k not in _RESOURCE_ROOT_FIELDS and k not in rest]:
        del obj[key]


def _prune(value: Any, schema: Schema | None, path: str, pruned: list[str]) -> None:
    if schema is None:
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _prune(item, schema.get("items"), f"{path}[{index}]", pruned)
        return
    if not isinstance(value, dict):
        return
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
    for key in list(value):
        if key in properties:
            _prune(value[key], properties[key], _child(path, key), pruned)
        elif isinstance(additional, dict):
            _prune(value[key], additional, _child(path, key), pruned)
        elif additional is True or keep_unknown:
            continue
        else:
            del value[key]
            pruned.append(_child(path, key))
    if schema.get("x-kubernetes-embedded-resource") and path:
        _prune_embedded_metadata(value, _child(path, "metadata"), pruned)


def _prune_embedded_metadata(value: dict[str, Any], path: str, pruned: list[str]) -> None:
    meta = value.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
            del meta[key]
            pruned.append(_child(path, key))


def apply_defaults(value: Any, schema: Schema | None) -> None:
    """Fill in `default`s in place, and drop nulls the schema does not allow (no default)."""
    if schema is None:
        return
    if isinstance(value, list):
        for item in value:
            apply_defaults(item, schema.get("items"))
        return
    if not isinstance(value, dict):
        return
    properties = schema.get("properties") or {}
    for key, prop in properties.items():
        present = key in value
        if present and value[key] is None and not prop.get("nullable"):
            if "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
            else:
                del value[key]  # PruneNonNullableNullsWithoutDefaults
        elif not present and "default" in prop:
            value[key] = copy.deepcopy(prop["default"])
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            apply_defaults(item, properties[key])
        elif isinstance(additional, dict):
            apply_defaults(item, additional)
