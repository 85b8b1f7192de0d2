"""Validating a custom resource against its CRD's structural OpenAPI v3 schema.

kube-apiserver runs k8s.io/kube-openapi/pkg/validation/validate over the object and turns
each result into a `field.Error` (apiextensions-apiserver pkg/apiserver/validation,
`kubeOpenAPIErrorToFieldError`): `required` -> Required value, `enum` -> Unsupported value,
`maxLength` -> Too long, `maxItems`/`maxProperties` -> Too many, a wrong type -> Invalid
value with the JSON type found, anything else -> Invalid value with kube-openapi's sentence
("spec.x in body should be greater than 0"). The sentences below are kube-openapi's
(pkg/validation/errors/schema.go).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from kubetune.emulator import field_errors
from kubetune.emulator.field_errors import FieldError, go_value

Schema = dict[str, Any]


def json_type(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_matches(value: Any, schema: Schema) -> bool:
    wanted = schema.get("type")
    found = json_type(value)
    if found == "null":
        return bool(schema.get("nullable")) or not (wanted or schema.get("x-kubernetes-int-or-string"))
    if schema.get("x-kubernetes-int-or-string"):
        return found in ("integer", "string")
    if not wanted:
        return True
    allowed = [wanted] if isinstance(wanted, str) else wanted
    return found in allowed or (found == "integer" and "number" in allowed)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate(value: Any, schema: Schema, path: str = "") -> list[FieldError]:
    """Every schema violation in `value`, with kube-apiserver's field paths and wording."""
    found: list[FieldError] = []
    _validate(value, schema, path, found)
    return found


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _validate(value: Any, schema: Schema, path: str, found: list[FieldError]) -> None:
    where = path or "body"
    if not _type_matches(value, schema):
        found_type = json_type(value)
        found.append(field_errors.type_invalid(
            path, found_type,
            f'{where} in body must be of type {schema.get("type")}: "{found_type}"'))
        return
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        found.append(field_errors.not_supported(path, value, list(schema["enum"])))
    if isinstance(value, dict):
        _validate_object(value, schema, path, found)
    elif isinstance(value, list):
        _validate_array(value, schema, path, found)
    elif isinstance(value, str):
        _validate_string(value, schema, path, found)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, found)


def _validate_object(value: dict[str, Any], schema: Schema, path: str, found: list[FieldError]) -> None:
    where = path or "body"
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            found.append(field_errors.required(_child(path, name)))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        found.append(field_errors.too_many(path, len(value), schema["maxProperties"]))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        found.append(field_errors.invalid(
            path, value, f"{where} in body should have at least {schema['minProperties']} properties"))
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            _validate(item, properties[key], _child(path, key), found)
        elif isinstance(additional, dict):
            _validate(item, additional, _child(path, key), found)


def _validate_array(value: list[Any], schema: Schema, path: str, found: list[FieldError]) -> None:
    where = path or "body"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        found.append(field_errors.too_many(path, len(value), schema["maxItems"]))
    if "minItems" in schema and len(value) < schema["minItems"]:
        found.append(field_errors.invalid(
            path, value, f"{where} in body should have at least {schema['minItems']} items"))
    if schema.get("uniqueItems"):
        seen = [json.dumps(item, sort_keys=True) for item in value]
        if len(set(seen)) != len(seen):
            found.append(field_errors.invalid(path, value, f"{where} in body shouldn't contain duplicates"))
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, f"{path}[{index}]", found)
    found.extend(_list_type_duplicates(value, schema, path))


def _list_type_duplicates(value: list[Any], schema: Schema, path: str) -> list[FieldError]:
    """x-kubernetes-list-type set/map: items (or their map keys) must be unique.

    apiextensions-apiserver pkg/apiserver/schema/listtype/validation.go reports each repeat
    as `field.Duplicate(path[i], item)` (for maps, the item's key fields).
    """
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("set", "map"):
        return []
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: set[str] = set()
    duplicates: list[FieldError] = []
    for index, item in enumerate(value):
        if list_type == "map" and isinstance(item, dict):
            identity: Any = {key: item[key] for key in keys if key in item}
        else:
            identity = item
        marker = json.dumps(identity, sort_keys=True)
        if marker in seen:
            duplicates.append(field_errors.duplicate(f"{path}[{index}]", identity))
        seen.add(marker)
    return duplicates


def _validate_string(value: str, schema: Schema, path: str, found: list[FieldError]) -> None:
    where = path or "body"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        found.append(field_errors.too_long(path, schema["maxLength"]))
    if "minLength" in schema and len(value) < schema["minLength"]:
        found.append(field_errors.invalid(
            path, value, f"{where} in body should be at least {schema['minLength']} chars long"))
    pattern = schema.get("pattern")
    if pattern and not _compiled(pattern).search(value):
        found.append(field_errors.invalid(path, value, f"{where} in body should match '{pattern}'"))


def _validate_number(value: int | float, schema: Schema, path: str, found: list[FieldError]) -> None:
    where = path or "body"
    if "minimum" in schema:
        bound = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= bound:
            found.append(field_errors.invalid(
                path, value, f"{where} in body should be greater than {go_value(float(bound))}"))
        elif value < bound:
            found.append(field_errors.invalid(
                path, value, f"{where} in body should be greater than or equal to {go_value(float(bound))}"))
    if "maximum" in schema:
        bound = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= bound:
            found.append(field_errors.invalid(
                path, value, f"{where} in body should be less than {go_value(float(bound))}"))
        elif value > bound:
            found.append(field_errors.invalid(
                path, value, f"{where} in body should be less than or equal to {go_value(float(bound))}"))
    factor = schema.get("multipleOf")
    if factor and (value / factor) != int(value / factor):
        found.append(field_errors.invalid(
            path, value, f"{where} in body should be a multiple of {go_value(float(factor))}"))
