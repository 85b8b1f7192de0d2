"""The operator's own admission check, for clusters where the chart's policy is off.

Its validating webhook (kopf's `@kopf.on.validate`) receives the request's `userInfo` from the
API server, which authenticated the requester; nothing written into the object (annotations,
`managedFields` manager names) names anyone. For each permission the rule table requires, it
asks the API server with a SubjectAccessReview (authorization.k8s.io/v1) whether that user
holds it, and refuses with the rule's message: the same words as the policy. Placement fields
are judged against the operator's allowlists as the operator's reconcile does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from .placement import PlacementPolicy, placement_problems
from .rules import Requirement, requirements

Review = Callable[[dict[str, Any]], Awaitable[bool]]
"""Creates a SubjectAccessReview and says whether it was allowed (kube.Kube.review_access)."""


def access_review(user_info: Mapping[str, Any], requirement: Requirement) -> dict[str, Any]:
    """The SubjectAccessReview asking whether this user may do what `requirement` needs.

    user, groups, uid and extra are copied from the admission request's userInfo, as
    kube-apiserver's own webhook authorizer would send them
    (https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access).
    """
    rule = requirement.rule
    spec: dict[str, Any] = {
        "user": str(user_info.get("username") or ""),
        "groups": [str(g) for g in user_info.get("groups") or []],
        "resourceAttributes": {
            "namespace": requirement.namespace,
            "verb": rule.verb,
            "group": rule.group,
            "resource": rule.resource,
            **({"name": requirement.name} if requirement.name else {}),
        },
    }
    if user_info.get("uid"):
        spec["uid"] = str(user_info["uid"])
    if user_info.get("extra"):
        spec["extra"] = {str(k): [str(v) for v in values]
                         for k, values in dict(user_info["extra"]).items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


async def refusals(kind: str, obj: dict[str, Any], old: dict[str, Any] | None,
                   user_info: Mapping[str, Any], review: Review, placement: PlacementPolicy,
                   exempt_users: Collection[str] = ()) -> list[str]:
    """Why this create (`old` None) or update must be refused; empty: admit it.

    `exempt_users` is the operator itself, which creates the EvalJob of a FinetuneJob's
    spec.evaluation after its author was checked (the policy's matchCondition, likewise)."""
    if user_info.get("username") in exempt_users:
        return []
    messages = []
    for requirement in requirements(kind, obj, old):
        if not await review(access_review(user_info, requirement)):
            messages.append(requirement.message)
    return messages + placement_problems(obj, placement, old)
