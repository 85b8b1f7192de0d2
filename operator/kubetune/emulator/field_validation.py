"""Server-side field validation: the `fieldValidation` query parameter (Strict, Warn, Ignore).

https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation: unknown and
duplicate fields in a write are an error under Strict (kubectl's default), a `Warning`
header under Warn (the default for clients that send nothing), and silently dropped under
Ignore. The error's shape depends on the verb (k8s.io/apiserver pkg/endpoints/handlers):
- create and update: 400 BadRequest, `<Kind> in version "<v>" cannot be handled as a <Kind>:
  strict decoding error: unknown field "spec.x"` (create.go/update.go, transformDecodeError);
- JSON and merge patch: 422 Invalid with an empty kind and name, one cause at `patch`
  (patch.go, jsonPatcher.applyPatchToCurrentObject), which kubectl prints as
  "The request is invalid: patch: Invalid value: ...";
- server-side apply: 400 BadRequest `error strict decoding YAML: ...` (patch.go, applyPatcher).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubetune.emulator import errors, field_errors

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
CREATE, UPDATE, PATCH, APPLY = "create", "update", "patch", "apply"


@dataclass
class FieldValidation:
    """One write's directive and verb, and the warnings it collected for the response."""

    directive: str = WARN
    verb: str = CREATE
    warnings: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # duplicate fields found in the body

    @classmethod
    def from_query(cls, value: str | None, verb: str) -> FieldValidation:
        if value in (None, ""):
            return cls(WARN, verb)
        if value not in (STRICT, WARN, IGNORE):
            raise errors.bad_request(
                f'fieldValidation parameter unsupported: "{value}"; valid values: "Ignore", "Warn", "Strict"')
        return cls(value, verb)

    def unknown_fields(self, kind: str, version: str, pruned: list[str], merged: Any) -> None:
        """Report dropped fields (and duplicates) as the directive and verb demand."""
        problems = [f'duplicate field "{path}"' for path in self.duplicates]
        problems += [f'unknown field "{path}"' for path in pruned]
        if not problems or self.directive == IGNORE:
            return
        if self.directive == WARN:
            self.warnings.extend(problems)
            return
        message = "strict decoding error: " + ", ".join(problems)
        if self.verb == PATCH:
            raise field_errors.invalid_object("", "", "", [
                field_errors.invalid("patch", json.dumps(merged, separators=(",", ":")), message)])
        if self.verb == APPLY:
            raise errors.bad_request(f"error strict decoding YAML: {message}")
        raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {message}')


class _Pairs(dict[str, Any]):
    duplicates: list[str]


def _remember_duplicates(pairs: list[tuple[str, Any]]) -> _Pairs:
    result = _Pairs()
    result.duplicates = []
    for key, value in pairs:
        if key in result:
            result.duplicates.append(key)
        result[key] = value  # the last one wins, as in encoding/json
    return result


def decode_json(raw: bytes) -> tuple[Any, list[str]]:
    """Parse a JSON body; also return the paths of fields that appear twice in one object."""
    value = json.loads(raw, object_pairs_hook=_remember_duplicates)
    duplicates: list[str] = []
    _collect(value, "", duplicates)
    return _plain(value), duplicates


def _collect(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, _Pairs):
        found.extend(f"{path}.{key}" if path else key for key in value.duplicates)
        for key, item in value.items():
            _collect(item, f"{path}.{key}" if path else key, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect(item, f"{path}[{index}]", found)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def warning_header(message: str) -> str:
    """A `Warning` header value (RFC 7234 code 299), as kube-apiserver sends warnings."""
    return f'299 - {json.dumps(message)}'
