"""System-owned metadata: the fields kube-apiserver sets and clients may not change.

uid, creationTimestamp, resourceVersion, generation and deletionTimestamp are what kopf
and the `kubernetes` client read to detect changes (generation for spec changes, the
resourceVersion for optimistic concurrency, deletionTimestamp for finalizer handling).
"""

from __future__ import annotations

import datetime
import secrets
import uuid
from typing import Any

# kube-apiserver's alphabet for generateName suffixes (no vowels, no look-alike characters).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH = 5
SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "generation", "resourceVersion")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generated_name(prefix: str) -> str:
    """`generateName` plus a random suffix, in kube-apiserver's format."""
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))
    return f"{prefix}{suffix}"


def stamp_created(obj: dict[str, Any], resource_version: int) -> None:
    """Set the system fields of a newly created object, in place."""
    metadata = obj["metadata"]
    for field in SYSTEM_FIELDS:
        metadata.pop(field, None)
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = now_rfc3339()
    metadata["generation"] = 1
    metadata["resourceVersion"] = str(resource_version)


def content_without_metadata_and_status(obj: dict[str, Any]) -> dict[str, Any]:
    """What counts for `generation`: everything except metadata, status and type info."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def carry_system_fields(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Copy the system fields of `old` into `new` (in place) and bump generation if due."""
    old_metadata, new_metadata = old["metadata"], new["metadata"]
    for field in SYSTEM_FIELDS:
        if field in old_metadata:
            new_metadata[field] = old_metadata[field]
        else:
            new_metadata.pop(field, None)
    if content_without_metadata_and_status(old) != content_without_metadata_and_status(new):
        new_metadata["generation"] = old_metadata.get("generation", 1) + 1
