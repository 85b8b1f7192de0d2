"""ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1): CEL rules that deny requests.

Platform teams use these policies (GA since Kubernetes 1.30) to reject objects their cluster
does not accept, e.g. Jobs without a cost-centre label or with too many GPUs; a Kueue
installation ships one that rejects Jobs without a queue. The operator must survive such a
rejection, so the emulator enforces them as kube-apiserver does for the part that matters
here: a policy's `matchConstraints.resourceRules` (groups, versions, resources, operations;
`*` matches all) and `namespaceSelector.matchLabels`, its `validations` (`expression`,
`message`, `reason`), and a binding that names the policy with
`validationActions: [Deny]`. A failed validation answers like kube-apiserver
(staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go):

    ValidatingAdmissionPolicy 'P' with binding 'B' denied request: MESSAGE

with the HTTP code of the validation's `reason` (Invalid 422 by default, Forbidden 403,
Unauthorized 401, RequestEntityTooLarge 413). A policy without a binding does nothing.
`matchConditions` are evaluated first: the policy applies only when all are true. The CEL
variables are `object`, `oldObject` (null on CREATE), `request` (operation, name, namespace,
kind, resource, userInfo) and, given the caller's identity and an authorizer, `authorizer`
(cel_kubernetes.py: `authorizer.group(...).resource(...)...check(VERB).allowed()` answered
by the emulator's RBAC for the requesting user), with Kubernetes' string functions.
Not modelled: messageExpression, paramKind/params, variables, auditAnnotations, Warn/Audit
actions, failurePolicy Ignore (an expression that errors denies, as failurePolicy Fail does).
"""

from __future__ import annotations

import functools
from typing import Any

import celpy

from kubetune.emulator import cel_kubernetes, errors
from kubetune.emulator.resources import ResourceType

POLICIES = ResourceType(
    "admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
    "ValidatingAdmissionPolicy", namespaced=False, singular="validatingadmissionpolicy",
    has_status=True)
BINDINGS = ResourceType(
    "admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding", namespaced=False,
    singular="validatingadmissionpolicybinding")

_CODES = {"Invalid": 422, "Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}


def check(policies: list[dict[str, Any]], bindings: list[dict[str, Any]], operation: str,
          rtype: ResourceType, namespace_labels: dict[str, str] | None, obj: dict[str, Any],
          old: dict[str, Any] | None = None, user: Any = None,
          decide: cel_kubernetes.Decide | None = None, subresource: str | None = None) -> None:
    """Raise the API error of the first bound policy that denies this request.

    `user` is the requester (an object with `name` and `groups`); `decide(user, check)`
    answers the policy's `authorizer` checks. Without them, `authorizer` is undefined and
    `request.userInfo` is empty. A write to a subresource (`status`) matches only rules that
    name it (`finetunejobs/status`), as in kube-apiserver's resourceRules."""
    resource = f"{rtype.plural}/{subresource}" if subresource else rtype.plural
    by_name = {p["metadata"]["name"]: p for p in policies}
    for binding in sorted(bindings, key=lambda b: b["metadata"]["name"]):
        spec = binding.get("spec") or {}
        policy = by_name.get(spec.get("policyName", ""))
        if policy is None or "Deny" not in (spec.get("validationActions") or []):
            continue
        constraints = (policy.get("spec") or {}).get("matchConstraints") or {}
        if not _matches(constraints, operation, rtype, namespace_labels, resource=resource):
            continue
        if not _matches(spec.get("matchResources") or {}, operation, rtype, namespace_labels,
                        resource=resource, rules_required=False):
            continue
        denial = _first_failure(policy, obj, old, operation, rtype, user, decide)
        if denial is not None:
            reason, message = denial
            raise errors.ApiError(
                _CODES.get(reason, 422), reason,
                f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding "
                f"'{binding['metadata']['name']}' denied request: {message}")


def _matches(constraints: dict[str, Any], operation: str, rtype: ResourceType,
             namespace_labels: dict[str, str] | None, rules_required: bool = True,
             resource: str | None = None) -> bool:
    rules = constraints.get("resourceRules")
    if rules is None and not rules_required:
        rules_ok = True
    else:
        rules_ok = any(_rule_matches(rule, operation, rtype, resource or rtype.plural)
                       for rule in rules or [])
    selector = (constraints.get("namespaceSelector") or {}).get("matchLabels") or {}
    labels = namespace_labels or {}
    return rules_ok and all(labels.get(k) == v for k, v in selector.items())


def _rule_matches(rule: dict[str, Any], operation: str, rtype: ResourceType,
                  resource: str) -> bool:
    def has(values: list[str] | None, value: str) -> bool:
        return bool(values) and ("*" in values or value in values)

    return (has(rule.get("apiGroups"), rtype.group) and has(rule.get("apiVersions"), rtype.version)
            and _resource_listed(rule.get("resources") or [], resource)
            and has(rule.get("operations"), operation))


def _resource_listed(listed: list[str], resource: str) -> bool:
    """`*` is every resource but no subresource; `*/*`, `*/status`, `jobs/*` reach those
    (RuleWithOperations.resources in admissionregistration.k8s.io/v1)."""
    if "/" not in resource:
        return "*" in listed or resource in listed
    name, sub = resource.split("/", 1)
    return any(entry in (resource, "*/*", f"*/{sub}", f"{name}/*") for entry in listed)


@functools.lru_cache(maxsize=512)
def _program(expression: str) -> Any:
    """Compiled once per expression: parsing dominates the cost of evaluating a policy."""
    env = celpy.Environment()
    return env.program(env.compile(expression), functions=cel_kubernetes.functions())


def _first_failure(policy: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None,
                   operation: str, rtype: ResourceType, user: Any = None,
                   decide: cel_kubernetes.Decide | None = None) -> tuple[str, str] | None:
    user_info = {"username": user.name, "groups": list(user.groups)} if user is not None else {}
    activation = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old) if old is not None else None,
        "request": celpy.json_to_cel({
            "operation": operation, "namespace": (obj.get("metadata") or {}).get("namespace", ""),
            "name": (obj.get("metadata") or {}).get("name", ""),
            "kind": {"group": rtype.group, "version": rtype.version, "kind": rtype.kind},
            "resource": {"group": rtype.group, "version": rtype.version, "resource": rtype.plural},
            "userInfo": user_info,
        }),
    }
    if decide is not None and user is not None:
        activation["authorizer"] = cel_kubernetes.Authorizer(decide, user)

    def evaluate(expression: str) -> bool:
        result = _program(expression).evaluate(activation)
        if isinstance(result, Exception):
            raise result
        return result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))

    spec = policy.get("spec") or {}
    for condition in spec.get("matchConditions") or []:
        expression = condition.get("expression", "")
        try:
            if not evaluate(expression):
                return None  # the policy does not apply to this request
        except Exception as error:  # failurePolicy Fail
            return "Invalid", f"matchCondition '{condition.get('name')}' resulted in error: {error}"
    for validation in spec.get("validations") or []:
        expression = validation.get("expression", "")
        try:
            passed = evaluate(expression)
        except Exception as error:  # failurePolicy Fail: an expression that errors denies
            return "Invalid", f"expression '{expression}' resulted in error: {error}"
        if passed:
            continue
        message = validation.get("message") or f"failed expression: {expression}"
        return validation.get("reason") or "Invalid", message
    return None
