"""Applying PATCH bodies by their Content-Type, as kube-apiserver does.

- `application/merge-patch+json`: RFC 7386 (what kopf sends).
- `application/strategic-merge-patch+json`: what kubectl and the `kubernetes` client send
  for built-in types (custom resources answer 415, see operations.py). Approximated as a
  merge patch (lists are replaced, not merged by key) with the `$patch`/`$setElementOrder`/
  `$retainKeys` directives dropped.
- `application/json-patch+json`: RFC 6902, via the `jsonpatch` package (a kmock dependency).
- `application/apply-patch+yaml`: server-side apply, approximated as a merge patch (no field
  ownership, no conflicts).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import yaml

from kubetune.emulator.errors import BUILTIN_PATCH_TYPES, bad_request, unsupported_media_type

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def decode_patch(body: bytes, content_type: str) -> Any:
    """Parse a PATCH body; server-side apply bodies may be YAML, the rest are JSON."""
    try:
        if media_type(content_type) == APPLY_PATCH:
            return yaml.safe_load(body)
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"cannot decode the patch body: {exc}") from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _drop_strategic_directives(patch: Any) -> Any:
    if isinstance(patch, dict):
        return {
            key: _drop_strategic_directives(value)
            for key, value in patch.items()
            if not key.startswith("$")
        }
    if isinstance(patch, list):
        return [_drop_strategic_directives(item) for item in patch]
    return patch


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Return a new object: `target` with `patch` applied; `target` is left untouched."""
    kind = media_type(content_type)
    if kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("a JSON patch must be a list of operations")
        try:
            return jsonpatch.apply_patch(target, patch, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise bad_request(f"the JSON patch cannot be applied: {exc}") from None
    if kind in (MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH):
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        if kind == STRATEGIC_MERGE_PATCH:
            patch = _drop_strategic_directives(patch)
        return merge_patch(target, patch)
    raise unsupported_media_type(BUILTIN_PATCH_TYPES)
