"""What kube-apiserver does to a write between decoding the body and storing the object.

Two steps, in the server's order (k8s.io/apiserver pkg/endpoints/handlers and
pkg/registry/generic/registry/store.go):
1. `decode`: the body becomes a typed object. Custom resources are pruned to their CRD's
   structural schema and defaulted; built-ins are pruned to their OpenAPI schema (a value
   of the wrong JSON type cannot be decoded: 400). Dropped fields are reported according to
   `fieldValidation` (see field_validation.py).
2. `validate`: ObjectMeta rules, then the schema (custom resources) or the kind's own
   rules (built-ins), then a CRD's CEL rules (skipped, with a note, when the schema found a
   wrong type or an unsupported value, as apiextensions-apiserver does). Any error -> 422.
Between the two, the caller checks the namespace exists (the NamespaceLifecycle plugin).
"""

from __future__ import annotations

import copy
from typing import Any

from kubetune.emulator import (
    builtin_rules,
    builtin_schemas,
    cel_rules,
    errors,
    field_errors,
    object_meta,
    schema_validation,
)
from kubetune.emulator.field_errors import FieldError
from kubetune.emulator.field_validation import FieldValidation
from kubetune.emulator.resources import CUSTOM_RESOURCE_DEFINITIONS, ResourceType
from kubetune.emulator.schema_coercion import apply_defaults, prune_unknown_fields
from kubetune.emulator.store import ObjectStore

Object = dict[str, Any]
_BLOCKING = ("FieldValueTypeInvalid", "FieldValueNotSupported")
_RULES_NOT_CHECKED = ("some validation rules were not checked because the object was invalid;"
                      " correct the existing errors to complete validation")


class Admission:
    """Decoding and validation of writes; reads CRD schemas from the store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _crd(self, rtype: ResourceType) -> dict[str, Any] | None:
        """The CRD that serves `rtype` (a CRD's name is <plural>.<group>), if it is one."""
        return self.store.get(CUSTOM_RESOURCE_DEFINITIONS.storage_key, None, f"{rtype.plural}.{rtype.group}")

    def is_custom(self, rtype: ResourceType) -> bool:
        return self._crd(rtype) is not None

    def crd_schema(self, rtype: ResourceType) -> dict[str, Any] | None:
        """The openAPIV3Schema of a custom resource's version."""
        crd = self._crd(rtype)
        if crd is None:
            return None
        for version in crd.get("spec", {}).get("versions", []):
            if version.get("name") == rtype.version:
                return (version.get("schema") or {}).get("openAPIV3Schema")
        return None

    def _schema(self, rtype: ResourceType) -> dict[str, Any] | None:
        if rtype.storage_key == CUSTOM_RESOURCE_DEFINITIONS.storage_key:
            return None  # a CRD's own schema is recursive; _validate_crd checks what matters
        if self.is_custom(rtype):
            return self.crd_schema(rtype)
        return builtin_schemas.schema_for(rtype.group, rtype.version, rtype.kind)

    def decode(self, rtype: ResourceType, obj: Object, validation: FieldValidation | None,
               merged: Any = None) -> None:
        """Prune, report unknown fields, reject undecodable types, default: in place."""
        validation = validation or FieldValidation()
        schema = self._schema(rtype)
        if schema is None:
            validation.unknown_fields(rtype.kind, rtype.version, [], merged)
            return
        reported = merged if merged is not None else obj
        pruned = prune_unknown_fields(obj, schema)
        validation.unknown_fields(rtype.kind, rtype.version, pruned, reported)
        if self.is_custom(rtype):
            apply_defaults(obj, schema)
            return
        wrong_types = [error for error in schema_validation.validate(obj, schema)
                       if error.type == "FieldValueTypeInvalid"]
        if wrong_types:
            raise _undecodable(rtype, wrong_types[0])
        builtin_rules.check_quantities(rtype.kind, rtype.version, obj)

    def validate(self, rtype: ResourceType, new: Object, old: Object | None) -> None:
        """Raise a 422 with every violation in `new` (`old` is the stored object on update)."""
        if rtype.storage_key == CUSTOM_RESOURCE_DEFINITIONS.storage_key:
            return
        meta = new.get("metadata") or {}
        if self.is_custom(rtype):
            found = object_meta.validate_object_meta(meta, object_meta.dns1123_subdomain)
            found += self._validate_custom(rtype, new, old)
        else:
            found = object_meta.validate_object_meta(meta, builtin_rules.name_rule(rtype.group, rtype.kind))
            schema = self._schema(rtype)
            if schema is not None:
                found += [error for error in schema_validation.validate(new, schema)
                          if error.type == "FieldValueRequired"]
            found += builtin_rules.validate(rtype.group, rtype.kind, new)
        if found:
            raise field_errors.invalid_object(rtype.group, rtype.kind, meta.get("name") or "", found)

    def _validate_custom(self, rtype: ResourceType, new: Object, old: Object | None) -> list[FieldError]:
        schema = self.crd_schema(rtype)
        if schema is None:
            return []
        body = {key: value for key, value in new.items() if key != "metadata"}
        body_schema = {**schema, "properties": {
            key: value for key, value in (schema.get("properties") or {}).items() if key != "metadata"}}
        found = schema_validation.validate(body, body_schema)
        if old is not None:  # validation ratcheting: errors in unchanged values are let through
            found = [error for error in found if not _unchanged_at(new, old, error.field)]
        if any(error.type in _BLOCKING for error in found):
            return [*found, field_errors.invalid("<nil>", None, _RULES_NOT_CHECKED)]
        if old is not None:
            # kube-apiserver defaults what it reads from etcd too, so oldSelf carries defaults
            # added by a newer CRD and `self == oldSelf` holds for an unchanged field.
            old = copy.deepcopy(old)
            apply_defaults(old, schema)
        return found + cel_rules.validate(_cel_view(new), _cel_view(old), schema)


def _unchanged_at(new: Object, old: Object, path: str) -> bool:
    """Whether the value at a field path is the same (or absent) in both objects.

    kube-apiserver correlates list items only for `map` lists; paths into lists are never
    treated as unchanged here, which can only reject more, never less.
    """
    if not path or "[" in path or path == "<nil>":
        return False
    missing = object()
    current: Any = new
    previous: Any = old
    for key in path.split("."):
        current = current.get(key, missing) if isinstance(current, dict) else missing
        previous = previous.get(key, missing) if isinstance(previous, dict) else missing
    return current == previous


def _cel_view(obj: Object | None) -> Object | None:
    """CEL sees only name and generateName of a resource's metadata."""
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    return {**obj, "metadata": {key: meta[key] for key in ("name", "generateName") if key in meta}}


def _undecodable(rtype: ResourceType, error: FieldError) -> errors.ApiError:
    """The 400 a typed decoder gives for a value of the wrong JSON type."""
    return errors.bad_request(
        f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: json: cannot'
        f' unmarshal {error.bad_value} into Go struct field {rtype.kind}.{error.field}')
