"""The chart's ValidatingAdmissionPolicies, generated from the rule table and the placement rules.

One policy (and its binding) per kind, matching CREATE and UPDATE of the main resource. Each
access rule becomes one validation whose CEL asks the API server's `authorizer` whether the
requesting user may `get` the object the field names
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/,
"Authorizer": `authorizer.group(G).resource(R).namespace(NS).name(N).check(VERB).allowed()`);
each placement rule becomes one validation against the chart's allowlists, inlined as CEL list
literals. A field that names nothing, or is unchanged on UPDATE, passes.

The operator's own service account is excluded by a matchCondition: it creates the EvalJob of
a FinetuneJob's `spec.evaluation`, whose references were checked against the user who wrote
them, and it holds no `get` on Secrets.

`chart_template()` is the Helm template (helm/kubetune/templates/admission-policy.yaml, written
by helm/sync-admission-policy.py; a test fails when it is stale); `policy_manifests()` renders
the same objects in Python, so tests evaluate exactly the CEL the chart ships.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from ..api.resources import GROUP, RESOURCES
from ..policies import admission as cluster_policy
from .placement import (
    IMAGE,
    NODE_SELECTOR,
    PLACEMENT_RULES,
    PRIORITY_CLASS,
    TOLERATIONS,
    PlacementPolicy,
    PlacementRule,
    glob_regex,
)
from .rules import AccessRule, rules_for

# Placeholders in the generated text, replaced by Helm actions (chart) or literals (Python).
FULLNAME = "@FULLNAME@"
OPERATOR_USER = "@OPERATOR_USER@"
LABELS = "@LABELS@"
LISTS = {
    IMAGE: "@IMAGE_REGEXES@",
    PRIORITY_CLASS: "@PRIORITY_CLASSES@",
    TOLERATIONS: "@TOLERATION_KEYS@",
    NODE_SELECTOR: "@NODE_SELECTOR_KEYS@",
}


class _Cel(str):
    """A CEL expression: written as a YAML literal block, so Helm actions inside need no quoting."""


def _select(root: str, path: tuple[str, ...]) -> str:
    return root + "".join(f".{key}" for key in path)


def _present(root: str, path: tuple[str, ...]) -> str:
    """Every step of `path` is set (has() of each prefix; CEL has no optional chaining here)."""
    return " && ".join(f"has({_select(root, path[:i + 1])})" for i in range(len(path)))


def _named(rule: AccessRule, root: str, path: tuple[str, ...]) -> tuple[str, str]:
    """(CEL that is true when `path` under `root` names an object, CEL of that object's name)."""
    value = _select(root, path)
    if rule.reference == "pvcUri":
        # pvc://CLAIM/PATH split on '/' is ["pvc:", "", CLAIM, ...].
        return (f"{_present(root, path)} && {value}.startsWith('pvc://')",
                f"{value}.split('/')[2]")
    return _present(root, (*path, "name")), f"{value}.name"


def _unchanged(present_old: str, value_old: str, value_new: str) -> str:
    return f"(request.operation == 'UPDATE' && {present_old} && {value_old} == {value_new})"


def _allowed(rule: AccessRule, name: str) -> str:
    return (f"authorizer.group('{rule.group}').resource('{rule.resource}')"
            f".namespace(object.metadata.namespace).name({name}).check('{rule.verb}').allowed()")


def _flag_set(rule: AccessRule, root: str) -> str:
    """The flag is true (and its `when` holds) in `root`."""
    value = _select(root, rule.path)
    expression = f"{_present(root, rule.path)} && {value} == true"
    if rule.when is not None:
        path = tuple(rule.when[0].split("."))
        expression += f" && {_present(root, path)} && {_select(root, path)} == '{rule.when[1]}'"
    return expression


def access_expression(rule: AccessRule) -> str:
    """Passes when the field names nothing, is unchanged, or the requester may `verb` it; in a
    list, when that holds for every item (a name some old item had counts as unchanged). A
    flag passes when it is off, was on already, or the requester may `verb` the resource."""
    if rule.reference == "flag":
        check = (f"authorizer.group('{rule.group}').resource('{rule.resource}')"
                 f".namespace(object.metadata.namespace).check('{rule.verb}').allowed()")
        return (f"!({_flag_set(rule, 'object')}) || (request.operation == 'UPDATE' && "
                f"{_flag_set(rule, 'oldObject')}) || {check}")
    if rule.list_path is None:
        present, name = _named(rule, "object", rule.path)
        present_old, name_old = _named(rule, "oldObject", rule.path)
        return (f"!({present}) || {_unchanged(present_old, name_old, name)} || "
                f"{_allowed(rule, name)}")
    items, old_items = _select("object", rule.list_path), _select("oldObject", rule.list_path)
    present, name = _named(rule, "item", rule.item_path)
    present_old, name_old = _named(rule, "old", rule.item_path)
    kept = (f"(request.operation == 'UPDATE' && {_present('oldObject', rule.list_path)} && "
            f"{old_items}.exists(old, {present_old} && {name_old} == {name}))")
    return (f"!({_present('object', rule.list_path)}) || "
            f"{items}.all(item, !({present}) || {kept} || {_allowed(rule, name)})")


def placement_expression(rule: PlacementRule) -> str:
    """Passes when the field is unset, unchanged, or within the allowlist (see placement.py)."""
    value = _select("object", rule.path)
    allowed = LISTS[rule]
    permitted = {
        IMAGE: f"{value} == '' || {allowed}.exists(r, {value}.matches(r))",
        PRIORITY_CLASS: f"{value} == '' || {value} in {allowed}",
        TOLERATIONS: (f"{value}.all(t, '*' in {allowed} || "
                      f"(has(t.key) && t.key != '' && t.key in {allowed}))"),
        NODE_SELECTOR: f"{value}.all(k, '*' in {allowed} || k in {allowed})",
    }[rule]
    unchanged = _unchanged(_present("oldObject", rule.path), _select("oldObject", rule.path), value)
    return f"!({_present('object', rule.path)}) || {unchanged} || {permitted}"


def _policy(kind: str) -> list[dict[str, Any]]:
    resource = next(r for r in RESOURCES.values() if r.kind == kind)
    name = f"{FULLNAME}-{resource.plural}"
    validations = [
        {"expression": _Cel(access_expression(rule)), "message": rule.message,
         "reason": "Forbidden"}
        for rule in rules_for(kind)
    ] + [
        {"expression": _Cel(placement_expression(rule)), "message": rule.message,
         "reason": "Forbidden"}
        for rule in PLACEMENT_RULES
    ]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": LABELS},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [GROUP], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": [resource.plural],
            }]},
            "matchConditions": [{
                "name": "not-the-operator",
                "expression": _Cel(f"request.userInfo.username != {OPERATOR_USER}"),
            }],
            "validations": validations,
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": LABELS},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def _cluster_policies() -> list[dict[str, Any]]:
    """The ClusterFinetunePolicy rules (kubetune.policies.admission), with the policies as
    params."""
    name = f"{FULLNAME}-{cluster_policy.PLURAL}"
    spec = cluster_policy.policy_spec(OPERATOR_USER)
    for condition in spec["matchConditions"] + spec["variables"]:
        condition["expression"] = _Cel(condition["expression"])
    for entry in spec["validations"]:
        entry["expression"] = _Cel(entry["expression"])
        entry["messageExpression"] = _Cel(entry["messageExpression"])
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": name, "labels": LABELS}, "spec": spec},
        {"apiVersion": "admissionregistration.k8s.io/v1",
         "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name, "labels": LABELS}, "spec": cluster_policy.binding_spec(name)},
    ]


def _manifests() -> list[dict[str, Any]]:
    return [m for kind in ("FinetuneJob", "EvalJob") for m in _policy(kind)] + _cluster_policies()


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Cel, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|"))

_TEMPLATE_HEAD = """\
{{- /*
Generated by helm/sync-admission-policy.py from kubetune.admission (rules.py, placement.py)
and kubetune.policies; do not edit. No confused deputy: a FinetuneJob or EvalJob may name only
the Secrets, PVCs and FinetuneJobs its requester may get, and may set image, priority class,
tolerations and node selector only as the trainer.allowed* values permit. Each
ClusterFinetunePolicy (the params of the last policy) holds for the namespaces it selects.
*/}}
{{- if .Values.admissionPolicy.enabled }}
{{- $fullname := include "kubetune.fullname" . }}
{{- $account := include "kubetune.serviceAccountName" . }}
{{- $operatorUser := printf "system:serviceaccount:%s:%s" .Release.Namespace $account }}
{{- $imageRegexes := list }}
{{- range (include "kubetune.allowedImages" . | fromJsonArray) }}
{{- $imageRegexes = append $imageRegexes (printf "^%s$" (regexQuoteMeta . | replace "\\\\*" ".*")) }}
{{- end }}
"""
_TEMPLATE_TAIL = "{{- end }}\n"
_HELM = {
    FULLNAME: "{{ $fullname }}",
    OPERATOR_USER: "{{ $operatorUser | toJson }}",
    LISTS[IMAGE]: "{{ $imageRegexes | toJson }}",
    LISTS[PRIORITY_CLASS]: "{{ .Values.trainer.allowedPriorityClasses | toJson }}",
    LISTS[TOLERATIONS]: "{{ .Values.trainer.allowedTolerationKeys | toJson }}",
    LISTS[NODE_SELECTOR]: "{{ .Values.trainer.allowedNodeSelectorKeys | toJson }}",
}


def chart_template() -> str:
    """The Helm template text of the policies and bindings."""
    documents = []
    for manifest in _manifests():
        text = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=1_000_000)
        text = text.replace(f"labels: '{LABELS}'",
                            'labels:\n    {{- include "kubetune.labels" . | nindent 4 }}')
        for placeholder, action in _HELM.items():
            text = text.replace(placeholder, action)
        documents.append("---\n" + text)
    return _TEMPLATE_HEAD + "".join(documents) + _TEMPLATE_TAIL


def policy_manifests(policy: PlacementPolicy, fullname: str = "kubetune",
                     operator_user: str = "system:serviceaccount:kubetune-system:kubetune"
                     ) -> list[dict[str, Any]]:
    """The same objects as the chart renders, without labels, for these settings."""
    literals = {
        FULLNAME: fullname,
        OPERATOR_USER: json.dumps(operator_user),
        LISTS[IMAGE]: json.dumps([glob_regex(g) for g in policy.images]),
        LISTS[PRIORITY_CLASS]: json.dumps(list(policy.priority_classes)),
        LISTS[TOLERATIONS]: json.dumps(list(policy.toleration_keys)),
        LISTS[NODE_SELECTOR]: json.dumps(list(policy.node_selector_keys)),
    }

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items() if v != LABELS}
        if isinstance(node, list):
            return [fill(v) for v in node]
        if isinstance(node, str):
            for placeholder, literal in literals.items():
                node = node.replace(placeholder, literal)
            return str(node)
        return node

    return fill(_manifests())
