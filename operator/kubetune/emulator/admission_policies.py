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
Not modelled: messageExpression, paramKind/params, matchConditions, auditAnnotations, Warn/Audit actions,
failurePolicy for expressions that do not compile (they deny, as failurePolicy Fail does).
"""

from __future__ import annotations

from typing import Any

import celpy

from kubetune.emulator import errors
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
          old: dict[str, Any] | None = None) -> None:
    """Raise the API error of the first bound policy that denies this request."""
    by_name = {p["metadata"]["name"]: p for p in policies}
    for binding in sorted(bindings, key=lambda b: b["metadata"]["name"]):
        spec = binding.get("spec") or {}
        policy = by_name.get(spec.get("policyName", ""))
        if policy is None or "Deny" not in (spec.get("validationActions") or []):
            continue
        constraints = (policy.get("spec") or {}).get("matchConstraints") or {}
        if not _matches(constraints, operation, rtype, namespace_labels):
            continue
        if not _matches(spec.get("matchResources") or {}, operation, rtype, namespace_labels,
                        rules_required=False):
            continue
        denial = _first_failure(policy, obj, old, operation, rtype)
        if denial is not None:
            reason, message = denial
            raise errors.ApiError(
                _CODES.get(reason, 422), reason,
                f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding "
                f"'{binding['metadata']['name']}' denied request: {message}")


def _matches(constraints: dict[str, Any], operation: str, rtype: ResourceType,
             namespace_labels: dict[str, str] | None, rules_required: bool = True) -> bool:
    rules = constraints.get("resourceRules")
    if rules is None and not rules_required:
        rules_ok = True
    else:
        rules_ok = any(_rule_matches(rule, operation, rtype) for rule in rules or [])
    selector = (constraints.get("namespaceSelector") or {}).get("matchLabels") or {}
    labels = namespace_labels or {}
    return rules_ok and all(labels.get(k) == v for k, v in selector.items())


def _rule_matches(rule: dict[str, Any], operation: str, rtype: ResourceType) -> bool:
    def has(values: list[str] | None, value: str) -> bool:
        return bool(values) and ("*" in values or value in values)

    return (has(rule.get("apiGroups"), rtype.group) and has(rule.get("apiVersions"), rtype.version)
            and has(rule.get("resources"), rtype.plural)
            and has(rule.get("operations"), operation))


def _first_failure(policy: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None,
                   operation: str, rtype: ResourceType) -> tuple[str, str] | None:
    env = celpy.Environment()
    activation = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old) if old is not None else None,
        "request": celpy.json_to_cel({
            "operation": operation, "namespace": (obj.get("metadata") or {}).get("namespace", ""),
            "name": (obj.get("metadata") or {}).get("name", ""),
            "resource": {"group": rtype.group, "version": rtype.version, "resource": rtype.plural},
        }),
    }
    for validation in (policy.get("spec") or {}).get("validations") or []:
        expression = validation.get("expression", "")
        try:
            passed = env.program(env.compile(expression)).evaluate(activation)
        except Exception as error:  # failurePolicy Fail: an expression that errors denies
            return "Invalid", f"expression '{expression}' resulted in error: {error}"
        if passed is True or (isinstance(passed, celpy.celtypes.BoolType) and bool(passed)):
            continue
        message = validation.get("message") or f"failed expression: {expression}"
        return validation.get("reason") or "Invalid", message
    return None
