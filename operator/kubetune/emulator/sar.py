"""SubjectAccessReview (authorization.k8s.io/v1): "may this user do this?", answered by the
emulator's authorizer, as kube-apiserver answers it
(https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access,
pkg/registry/authorization/subjectaccessreview/rest.go):

- create only (POST, cluster-scoped); nothing is stored, the reply is the request with
  `status.allowed` (and `status.reason` when denied) filled in, HTTP 201;
- `spec.resourceAttributes` or `spec.nonResourceAttributes`, exactly one; `spec.user` or
  `spec.groups` must be set; otherwise 422;
- the decision is the authorizer's for spec.user / spec.groups, not for the caller.

Without an authorizer (the emulator's default mode, like `--authorization-mode=AlwaysAllow`)
everything is allowed. Not modelled: non-resource URLs (allowed), fieldSelector/labelSelector
attributes, `extra`-based decisions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubetune.emulator import errors
from kubetune.emulator.cel_kubernetes import AccessCheck
from kubetune.emulator.resources import ResourceType

SUBJECT_ACCESS_REVIEWS = ResourceType(
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview",
    namespaced=False, singular="subjectaccessreview")


@dataclass(frozen=True)
class Subject:
    """Whom a review asks about (a user as the authorizer sees it)."""

    name: str
    groups: tuple[str, ...] = ()


Decide = Callable[[Subject, AccessCheck], bool]


def always_allow(subject: Subject, check: AccessCheck) -> bool:
    return True


def review(body: Any, decide: Decide) -> dict[str, Any]:
    """The SubjectAccessReview `body` with its status, or a 422 saying what must hold."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        raise _invalid("spec", "Required value")
    spec = body["spec"]
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise _invalid("spec.resourceAttributes",
                       "exactly one of nonResourceAttributes or resourceAttributes must be specified")
    if not spec.get("user") and not spec.get("groups"):
        raise _invalid("spec.user", "at least one of user or group must be specified")
    subject = Subject(str(spec.get("user") or ""), tuple(str(g) for g in spec.get("groups") or ()))
    if resource is not None:
        check = AccessCheck(
            verb=str(resource.get("verb") or ""), group=str(resource.get("group") or ""),
            resource=str(resource.get("resource") or ""),
            subresource=resource.get("subresource") or None,
            namespace=resource.get("namespace") or None, name=resource.get("name") or None)
        allowed = bool(decide(subject, check))
    else:
        allowed = True
    reply = copy.deepcopy(body)
    reply.setdefault("apiVersion", SUBJECT_ACCESS_REVIEWS.api_version)
    reply.setdefault("kind", SUBJECT_ACCESS_REVIEWS.kind)
    reply.setdefault("metadata", {})
    reply["status"] = {"allowed": allowed}
    if not allowed:
        reply["status"]["reason"] = "no RBAC policy matched"
    return reply


def _invalid(field: str, detail: str) -> errors.ApiError:
    return errors.ApiError(
        422, "Invalid",
        f'SubjectAccessReview.authorization.k8s.io "" is invalid: {field}: Invalid value: '
        f"{detail}")
