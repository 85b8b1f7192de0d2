"""`x-kubernetes-validations`: a CRD's CEL rules, evaluated with cel-python as kube-apiserver does.

Semantics from https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules
and apiextensions-apiserver pkg/apiserver/schema/cel/validation.go:
- a rule runs with `self` bound to the value at its schema node, wherever the value exists;
- a transition rule (one that mentions `oldSelf`) runs only on update, and only where the
  old object has a value at the same place (objects by property, maps by key, `map` lists by
  their keys): on create it is skipped;
- a failing rule is `field.Invalid(path, <schema type>, message)` ("spec.model: Invalid
  value: \"object\": is immutable"), or Forbidden/Required/Duplicate by the rule's `reason`;
  `fieldPath` moves the error to a child; the root's path prints as `<nil>`;
- a rule that errors reports "<error> evaluating rule: <rule>";
- validation ratcheting (on by default since 1.30; KEP-4008,
  https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-ratcheting):
  on update, a rule without oldSelf is not run on a value equal to the old one.
Numbers follow the schema (a `number` field is a double even when written as 1).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes

from kubetune.emulator import field_errors
from kubetune.emulator.field_errors import FieldError

Schema = dict[str, Any]
_ENVIRONMENT = celpy.Environment()
_OLD_SELF = re.compile(r"\boldSelf\b")
_ROOT_PATH = "<nil>"  # field.Path(nil).String()
_MISSING = object()


@lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    return _ENVIRONMENT.program(_ENVIRONMENT.compile(expression))


def to_cel(value: Any, schema: Schema | None, memo: dict[int, Any] | None = None) -> Any:
    """A JSON value as CEL sees it under `schema` (doubles for `number`, maps for objects).

    `memo` (by the value's id) spares converting a subtree again for a nested rule.
    """
    if memo is not None and isinstance(value, dict | list):
        if id(value) not in memo:
            memo[id(value)] = _to_cel(value, schema, memo)
        return memo[id(value)]
    return _to_cel(value, schema, memo)


def _to_cel(value: Any, schema: Schema | None, memo: dict[int, Any] | None) -> Any:
    schema = schema or {}
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int | float):
        if schema.get("type") == "number" or isinstance(value, float):
            return celtypes.DoubleType(value)
        return celtypes.IntType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, list):
        return celtypes.ListType([to_cel(item, schema.get("items"), memo) for item in value])
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    return celtypes.MapType({
        celtypes.StringType(key): to_cel(
            item, properties.get(key) or (additional if isinstance(additional, dict) else None), memo)
        for key, item in value.items()
    })


def validate(new: Any, old: Any, schema: Schema) -> list[FieldError]:
    """Every failing CEL rule in `new` (with `old` for transition rules; None on create)."""
    found: list[FieldError] = []
    _walk(new, _MISSING if old is None else old, schema, "", found, {})
    return found


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: Any, old: Any, schema: Schema, path: str, found: list[FieldError],
          memo: dict[int, Any]) -> None:
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations") or ():
        error = _check(rule, value, old, schema, path, memo)
        if error is not None:
            found.append(error)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            child_schema = properties.get(key) or (additional if isinstance(additional, dict) else None)
            if child_schema is None:
                continue
            child_old = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
            _walk(item, child_old, child_schema, _child(path, key), found, memo)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        olds = _correlated_list_items(value, old, schema)
        for index, item in enumerate(value):
            _walk(item, olds[index], schema["items"], f"{path}[{index}]", found, memo)


def _correlated_list_items(value: list[Any], old: Any, schema: Schema) -> list[Any]:
    """Old items for a `map` list, matched by key; other lists have no old items (atomic)."""
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
        return [_MISSING] * len(value)

    def identity(item: Any) -> tuple[Any, ...] | None:
        return tuple(item.get(key) for key in keys) if isinstance(item, dict) else None

    by_key = {identity(item): item for item in old}
    return [by_key.get(identity(item), _MISSING) for item in value]


def _check(rule: dict[str, Any], value: Any, old: Any, schema: Schema, path: str,
           memo: dict[int, Any]) -> FieldError | None:
    expression = rule["rule"]
    is_transition = bool(_OLD_SELF.search(expression))
    if is_transition and old is _MISSING:
        return None  # transition rules need an old value (update only)
    unchanged = old is not _MISSING and value == old
    if unchanged and (not is_transition or expression.strip() == "self == oldSelf"):
        return None  # ratcheted; or an equality that holds without evaluating it
    error_path = path
    if rule.get("fieldPath"):
        error_path = path + rule["fieldPath"] if path else rule["fieldPath"].lstrip(".")
    error_path = error_path or _ROOT_PATH
    schema_type = schema.get("type") or "object"
    activation = {"self": to_cel(value, schema, memo)}
    if is_transition:
        activation["oldSelf"] = to_cel(old, schema)
    try:
        result = _program(expression).evaluate(activation)
    except celpy.CELEvalError as exc:
        return field_errors.invalid(error_path, schema_type,
                                    f"{_eval_error_text(exc)} evaluating rule: {expression.strip()}")
    except celpy.CELParseError as exc:
        return field_errors.invalid(error_path, schema_type, f"compilation failed: {exc}")
    if result is True or result == celtypes.BoolType(True):
        return None
    message = _message(rule, activation)
    reason = rule.get("reason") or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        return field_errors.forbidden(error_path, message)
    if reason == "FieldValueRequired":
        return field_errors.required(error_path, message)
    if reason == "FieldValueDuplicate":
        return field_errors.duplicate(error_path, schema_type)
    return field_errors.invalid(error_path, schema_type, message)


def _message(rule: dict[str, Any], activation: dict[str, Any]) -> str:
    """messageExpression's result, else message, else "failed rule: <rule>"."""
    if rule.get("messageExpression"):
        try:
            text = str(_program(rule["messageExpression"]).evaluate(activation))
            if text.strip():
                return text
        except (celpy.CELEvalError, celpy.CELParseError):
            pass  # kube-apiserver falls back to message (and logs) when the expression fails
    if rule.get("message"):
        return str(rule["message"])
    return f"failed rule: {rule['rule'].strip()}"


def _eval_error_text(exc: celpy.CELEvalError) -> str:
    first = exc.args[0] if exc.args else exc
    return str(first)
