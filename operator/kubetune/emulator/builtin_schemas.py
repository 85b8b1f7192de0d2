"""The official OpenAPI schemas of built-in kinds (Job, Pod, ...), from `kubernetes-validate`.

kubernetes-validate ships the JSON Schema form of each Kubernetes release's OpenAPI document;
here a kind's schema is turned into the structural dialect that `schema_coercion` and
`schema_validation` read (one `type`, `nullable`, `x-kubernetes-int-or-string`, nested
schemas inlined), so built-ins are decoded as kube-apiserver decodes them into Go structs:
undeclared fields are dropped (or rejected under `fieldValidation=Strict`) and a value of the
wrong JSON type cannot be decoded at all.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

Schema = dict[str, Any]
# The release the emulator reports in /version; its schemas are the ones enforced.
SCHEMA_RELEASE = "v1.32.0-local"
_PERMISSIVE: Schema = {"x-kubernetes-preserve-unknown-fields": True}


@cache
def _definitions() -> dict[str, Any]:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_RELEASE
    return json.loads((folder / "_definitions.json").read_text())["$defs"]


@cache
def _definition_names() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> the definition's name, from x-kubernetes-group-version-kind."""
    names: dict[tuple[str, str, str], str] = {}
    for name, definition in _definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind") or ():
            names.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return names


@cache
def schema_for(group: str, version: str, kind: str) -> Schema | None:
    """The structural schema of a built-in kind, or None if kubernetes-validate has none."""
    name = _definition_names().get((group, version, kind))
    if name is None:
        return None
    return _structural(_definitions()[name], ())


def _structural(schema: Schema, seen: tuple[str, ...]) -> Schema:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return dict(_PERMISSIVE)  # a recursive type (JSONSchemaProps): accepted as is
        return _structural(_definitions()[name], (*seen, name))
    if "oneOf" in schema:  # IntOrString, Quantity: a string or a number
        types = {t for option in schema["oneOf"] for t in _types(option)}
        if types <= {"string", "integer"}:
            return {"x-kubernetes-int-or-string": True, "nullable": True}
        return {"type": sorted(types), "nullable": True}
    result: Schema = {}
    types = _types(schema)
    if types:
        result["type"] = types[0] if len(types) == 1 else types
    if "null" in _raw_types(schema):
        result["nullable"] = True
    for keyword in ("required", "enum", "format"):
        if keyword in schema:
            result[keyword] = schema[keyword]
    if "properties" in schema:
        result["properties"] = {key: _structural(value, seen)
                                for key, value in schema["properties"].items()}
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        result["additionalProperties"] = _structural(additional, seen)
    if "items" in schema:
        result["items"] = _structural(schema["items"], seen)
    if result.get("type") == "object" and "properties" not in result and "additionalProperties" not in result:
        result["x-kubernetes-preserve-unknown-fields"] = True  # free-form (RawExtension, FieldsV1)
    if not types and "properties" not in schema:
        result["x-kubernetes-preserve-unknown-fields"] = True
    return result


def _raw_types(schema: Schema) -> list[str]:
    found = schema.get("type")
    if found is None:
        return []
    return [found] if isinstance(found, str) else list(found)


def _types(schema: Schema) -> list[str]:
    return [t for t in _raw_types(schema) if t != "null"]
