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

    RESOURCE.GROUP "NAME" is forbidden: ValidatingAdmissionPolicy 'P' with binding 'B'
    denied request: MESSAGE

(the prefix from admission.NewForbidden, as for every admission plugin's refusal) with the
HTTP code of the validation's `reason` (Invalid 422 by default, Forbidden 403,
Unauthorized 401, RequestEntityTooLarge 413). A policy without a binding does nothing.
`matchConditions` are evaluated first: the policy applies only when all are true. The CEL
variables are `object`, `oldObject` (null on CREATE), `request` (operation, name, namespace,
kind, resource, userInfo) and, given the caller's identity and an authorizer, `authorizer`
(cel_kubernetes.py: `authorizer.group(...).resource(...)...check(VERB).allowed()` answered
by the emulator's RBAC for the requesting user), with Kubernetes' string functions.

Parameters (https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/,
"Parameter resources"): a policy with `paramKind` is evaluated once per object its binding's
`paramRef` selects (by `name`, or by label `selector`, `{}` selecting all; for a namespaced
kind in `paramRef.namespace`, else the request's namespace), with that object as `params`; any
failing evaluation denies. With no such object, `parameterNotFoundAction: Allow` lets the
request through and `Deny` (or a binding without paramRef) denies it. `namespaceObject` is the
request's Namespace (null for cluster-scoped objects). `variables` are named expressions that
validations read as `variables.NAME`. `messageExpression` gives the message; when it errors or
gives an empty, blank or multi-line string, `message` is used instead.
Not modelled: auditAnnotations, Warn/Audit actions, failurePolicy Ignore (an expression that
errors denies, as failurePolicy Fail does).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
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

FindParams = Callable[[dict[str, Any], dict[str, Any], str | None], list[dict[str, Any]]]
"""(paramKind, paramRef, request namespace) -> the parameter objects the reference selects."""


def check(policies: list[dict[str, Any]], bindings: list[dict[str, Any]], operation: str,
          rtype: ResourceType, namespace_labels: dict[str, str] | None, obj: dict[str, Any],
          old: dict[str, Any] | None = None, user: Any = None,
          decide: cel_kubernetes.Decide | None = None, subresource: str | None = None,
          namespace_object: dict[str, Any] | None = None,
          find_params: FindParams | None = None) -> None:
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
        denial = None
        for params in _params(policy, spec, obj, find_params):
            if isinstance(params, tuple):  # a binding that cannot be configured
                denial = params
                break
            denial = _first_failure(policy, obj, old, operation, rtype, user, decide,
                                    params=params, namespace_object=namespace_object)
            if denial is not None:
                break
        if denial is not None:
            reason, message = denial
            qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            name = (obj.get("metadata") or {}).get("name") or ""
            forbidden = f"{qualified} {json.dumps(name)}" if name else qualified
            raise errors.ApiError(
                _CODES.get(reason, 422), reason,
                f"{forbidden} is forbidden: ValidatingAdmissionPolicy "
                f"'{policy['metadata']['name']}' with binding "
                f"'{binding['metadata']['name']}' denied request: {message}")


_NO_PARAMS = object()


def _params(policy: dict[str, Any], binding_spec: dict[str, Any], obj: dict[str, Any],
            find_params: FindParams | None) -> list[Any]:
    """What to evaluate the policy with: [_NO_PARAMS] without paramKind, each selected
    parameter object otherwise (sorted by namespace and name), [] when none is found and
    the binding allows that, or [(reason, message)] when the binding denies it."""
    kind = (policy.get("spec") or {}).get("paramKind")
    if not kind:
        return [None]
    ref = binding_spec.get("paramRef")
    if not ref:
        return [("Invalid", "failed to configure binding: paramKind is set on the policy but "
                            "the binding has no paramRef")]
    namespace = (obj.get("metadata") or {}).get("namespace")
    found = find_params(kind, ref, namespace) if find_params else []
    if found:
        return sorted(found, key=lambda p: (p["metadata"].get("namespace", ""),
                                            p["metadata"]["name"]))
    if ref.get("parameterNotFoundAction") == "Allow":
        return []
    return [("Invalid", "failed to configure binding: no params found for policy binding "
                        "with `Deny` parameterNotFoundAction")]


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
                   decide: cel_kubernetes.Decide | None = None, params: Any = None,
                   namespace_object: dict[str, Any] | None = None) -> tuple[str, str] | None:
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
    spec = policy.get("spec") or {}
    if spec.get("paramKind"):
        activation["params"] = celpy.json_to_cel(params)
    activation["namespaceObject"] = (celpy.json_to_cel(namespace_object)
                                     if namespace_object is not None else None)

    def value_of(expression: str) -> Any:
        result = _program(expression).evaluate(activation)
        if isinstance(result, Exception):
            raise result
        return result

    def evaluate(expression: str) -> bool:
        result = value_of(expression)
        return result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))

    if spec.get("variables"):
        # In order, each seeing the ones before it; an error is kept as the variable's value
        # and surfaces in the expressions that read it, as kube-apiserver's lazy evaluation.
        values = celpy.celtypes.MapType({})
        activation["variables"] = values
        for variable in spec["variables"]:
            try:
                value = value_of(variable.get("expression", ""))
            except Exception as error:
                value = celpy.CELEvalError(str(error))
            values[celpy.celtypes.StringType(variable.get("name", ""))] = value
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
        message = _message_of(validation, value_of) or validation.get("message") or (
            f"failed expression: {expression}")
        return validation.get("reason") or "Invalid", message
    return None


def _message_of(validation: dict[str, Any], value_of: Callable[[str], Any]) -> str | None:
    """messageExpression's string, or None where kube-apiserver falls back to `message`."""
    expression = validation.get("messageExpression")
    if not expression:
        return None
    try:
        message = value_of(expression)
    except Exception:
        return None
    if not isinstance(message, str) or not message.strip() or "\n" in message:
        return None
    return str(message)
