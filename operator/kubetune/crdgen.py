"""Generate the CustomResourceDefinitions from the API models.

pydantic writes JSON Schema (2020-12 flavour, with $refs); Kubernetes wants a structural
OpenAPI v3.0 schema: every node typed, no $ref, no anyOf-with-null, `default` only where the
API server should write it, and our CEL rules as `x-kubernetes-validations`.
`kubetune crds` writes the result to crds/; a test fails when the committed files differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from .api.base import cel
from .api.resources import CATEGORY, GROUP, RESOURCES, VERSION, Resource

_RULES = "x-kubernetes-validations"
_DROPPED_KEYS = {"title", "$defs", "additionalProperties", "const"}


class _WithFactoryDefaults(GenerateJsonSchema):
    """Writes defaults that come from a default_factory too, so the CRD states them."""

    def default_schema(self, schema: Any) -> dict[str, Any]:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().default_schema(schema)
        json_schema = self.generate_inner(schema["schema"])
        json_schema["default"] = self.encode_default(factory())
        return json_schema


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI schema of one model."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_WithFactoryDefaults)
    return _structural(raw, raw.get("$defs", {}))


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:  # inline the referenced model; local keys (description, rules) win
        target = defs[node.pop("$ref").split("/")[-1]]
        rules = target.get(_RULES, []) + node.get(_RULES, [])
        node = {**target, **node}
        if rules:  # the model's own rules and the field's (immutability) both apply
            node[_RULES] = rules
    if "anyOf" in node:  # Optional[X] -> X; the null branch only means "may be absent"
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express a union of {branches} structurally")
        node = {**_structural(branches[0], defs), **node}
    if "const" in node:
        node["enum"] = [node["const"]]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        elif key == "default":
            if value is not None:
                # Objects default to {}: the API server then fills their fields' own defaults,
                # so each default is written in exactly one place.
                out[key] = {} if isinstance(value, dict) else value
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema's number form -> OpenAPI 3.0's boolean form
            out[key.replace("exclusiveM", "m")], out[key] = value, True
        else:
            out[key] = value
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):  # dict[str, X]: a map, not a closed object
        out["additionalProperties"] = _structural(additional, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and "enum" in out:
        out["type"] = "string"
    return out


def resource_schema(resource: Resource) -> dict[str, Any]:
    """openAPIV3Schema of one resource: apiVersion, kind, metadata, spec, status."""
    properties = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": model_schema(resource.spec_model),
    }
    if resource.has_status:
        status = model_schema(resource.status_model)
        # kopf keeps its own bookkeeping under status.kopf; the API server must not prune it.
        status["properties"]["kopf"] = {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}
        properties["status"] = status
    schema = {
        "type": "object",
        "description": resource.spec_model.__doc__.strip().splitlines()[0],
        "required": ["spec"],
        "properties": properties,
    }
    if resource.max_name_length < 253:  # objects with children: their names must fit
        schema["x-kubernetes-validations"] = [
            cel(
                f"self.metadata.name.size() <= {resource.max_name_length}",
                f"metadata.name must be at most {resource.max_name_length} characters so that "
                "the names of its child objects fit Kubernetes' 63-character limit",
            )
        ]
    return schema


def crd(resource: Resource) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one resource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.crd_name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if resource.namespaced else "Cluster",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "shortNames": [resource.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    **({"subresources": {"status": {}}} if resource.has_status else {}),
                    "additionalPrinterColumns": list(resource.printer_columns),
                    "schema": {"openAPIV3Schema": resource_schema(resource)},
                }
            ],
        },
    }


def crd_yaml(resource: Resource) -> str:
    header = "# Generated from the kubetune API models by `kubetune crds`. Do not edit.\n"
    return header + yaml.safe_dump(crd(resource), sort_keys=False, width=100)


def write_crds(folder: Path) -> list[Path]:
    """Write one YAML file per resource; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for resource in RESOURCES.values():
        path = folder / f"{resource.crd_name}.yaml"
        path.write_text(crd_yaml(resource))
        paths.append(path)
    return paths
