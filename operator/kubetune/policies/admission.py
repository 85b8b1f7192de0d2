"""The ValidatingAdmissionPolicy that enforces ClusterFinetunePolicies at apply time, generated
from the rule table (rules.py) so that it refuses exactly what the operator refuses.

kube-apiserver evaluates a policy with `paramKind` once per parameter object that the
binding's `paramRef` selects, as `params`, and denies the request when any evaluation fails
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/,
"Parameter resources"). The binding selects every ClusterFinetunePolicy
(`paramRef.selector: {}`) and allows requests when there is none
(`parameterNotFoundAction: Allow`). A binding's own namespaceSelector cannot come from a
parameter, so each validation first asks whether the policy's namespaceSelector selects the
request's namespace, from `namespaceObject.metadata.labels`. Messages come from
`messageExpression`, naming the policy and the field.
"""

from __future__ import annotations

from typing import Any

from ..api.resources import API_VERSION, CLUSTER_FINETUNE_POLICY, GROUP
from .rules import KIND, RULES, StaticRule

PLURAL = CLUSTER_FINETUNE_POLICY.plural
_LABELS = "namespaceObject.metadata.labels"
_SELECTOR = "params.spec.namespaceSelector"
SELECTED = "namespaceSelected"
"""The variable (spec.variables) that says whether the policy in `params` applies here."""

# Go's regexp.QuoteMeta characters but '*', which becomes '.*' (placement.glob_regex).
_QUOTED = "\\.+?()|[]{}^$"


def _select(root: str, path: tuple[str, ...]) -> str:
    return root + "".join(f".{key}" for key in path)


def _present(root: str, path: tuple[str, ...]) -> str:
    return " && ".join(f"has({_select(root, path[:i + 1])})" for i in range(len(path)))


def _quote(text: str) -> str:
    """A CEL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def glob_regex_cel(glob: str) -> str:
    """CEL that turns the glob string `glob` into glob_regex's anchored regular expression."""
    expression = glob
    for char in _QUOTED:  # the backslash first, so later escapes are not escaped again
        expression += f".replace({_quote(char)}, {_quote(chr(92) + char)})"
    return f"'^' + {expression}.replace('*', '.*') + '$'"


def namespace_selected() -> str:
    """The policy's namespaceSelector selects the request's namespace (selector.py's rules)."""
    has_labels = f"has({_LABELS})"
    match_labels = (f"!has({_SELECTOR}.matchLabels) || {_SELECTOR}.matchLabels.all(k, "
                    f"{has_labels} && k in {_LABELS} && {_LABELS}[k] == {_SELECTOR}.matchLabels[k])")
    present = f"({has_labels} && e.key in {_LABELS})"
    within = f"({present} && {_LABELS}[e.key] in e.values)"
    expressions = (
        f"!has({_SELECTOR}.matchExpressions) || {_SELECTOR}.matchExpressions.all(e, "
        f"e.operator == 'In' ? {within} : e.operator == 'NotIn' ? !{within} : "
        f"e.operator == 'Exists' ? {present} : !{present})")
    return (f"!has({_SELECTOR}) || (({match_labels}) && ({expressions}))")


def _unchanged(rule: StaticRule) -> str:
    new, old = _present("object", rule.path), _present("oldObject", rule.path)
    return (f"(request.operation == 'UPDATE' && ({old}) == ({new}) && "
            f"(!({new}) || {_select('oldObject', rule.path)} == {_select('object', rule.path)}))")


def _holds(rule: StaticRule) -> str:
    """CEL that is true when the job keeps `rule` of the policy in `params` (rules._problem)."""
    setting = f"params.spec.{rule.setting}"
    value, present = _select("object", rule.path), _present("object", rule.path)
    if rule.check == "labels":
        return f"{setting}.all(k, {present} && k in {value} && {value}[k] != '')"
    if rule.check == "queue":
        return f"({present}) ? {value} in {setting} : has(params.spec.defaultQueue)"
    if rule.check == "max":
        return f"!({present}) || {value} <= {setting}"
    return f"!({present}) || {setting}.exists(g, {value}.matches({glob_regex_cel('g')}))"


def _detail(rule: StaticRule) -> str:
    """CEL of rules._problem's text."""
    setting = f"params.spec.{rule.setting}"
    listed = f"' ({rule.setting})'"
    joined = f"' (' + {setting}.join(', ') + ')'"
    if rule.check == "labels":
        value, present = _select("object", rule.path), _present("object", rule.path)
        missing = f"{setting}.filter(k, !({present} && k in {value} && {value}[k] != ''))"
        return f"'{rule.field} must set ' + {missing}.join(', ') + {listed}"
    if rule.check == "queue":
        return (f"(({_present('object', rule.path)}) ? '{rule.field} must be one of ' : "
                f"'{rule.field} must be set to one of ') + '{rule.setting}' + {joined}")
    if rule.check == "max":
        return f"'{rule.field} must be at most ' + string({setting}) + {listed}"
    globs = f"'{rule.field} must match one of {rule.setting}' + {joined}"
    if rule.check == "images":
        return (f"{setting}.size() == 0 ? '{rule.field} must be unset: jobs run the image of "
                f"their runtime ({rule.setting} is empty)' : {globs}")
    return globs


def _list_holds(rule: StaticRule) -> str:
    """Every item's value is unset, was some old item's, or matches a glob (rules._list_problem)."""
    assert rule.check == "globs" and rule.list_path is not None
    items, old_items = _select("object", rule.list_path), _select("oldObject", rule.list_path)
    value, present = _select("item", rule.item_path), _present("item", rule.item_path)
    kept = (f"(request.operation == 'UPDATE' && {_present('oldObject', rule.list_path)} && "
            f"{old_items}.exists(old, {_present('old', rule.item_path)} && "
            f"{_select('old', rule.item_path)} == {value}))")
    matches = f"params.spec.{rule.setting}.exists(g, {value}.matches({glob_regex_cel('g')}))"
    return (f"!({_present('object', rule.list_path)}) || "
            f"{items}.all(item, !({present}) || {kept} || {matches})")


def validation(rule: StaticRule) -> dict[str, Any]:
    holds = (_list_holds(rule) if rule.list_path is not None
             else f"{_unchanged(rule)} || ({_holds(rule)})")
    expression = (f"request.kind.kind != '{rule.kind}' || !variables.{SELECTED} || "
                  f"!has(params.spec.{rule.setting}) || {holds}")
    return {
        "expression": expression,
        "messageExpression": f"'{KIND} ' + params.metadata.name + ': ' + ({_detail(rule)})",
        "message": f"{rule.field}: not allowed by a {KIND} ({rule.setting})",
        "reason": "Forbidden",
    }


def validations() -> list[dict[str, Any]]:
    """One per rule: FinetuneJob and EvalJob rules differ, so each checks the request's kind."""
    return [validation(rule) for rule in RULES]


def param_kind() -> dict[str, str]:
    return {"apiVersion": API_VERSION, "kind": KIND}


def policy_spec(operator_user_cel: str) -> dict[str, Any]:
    """The ValidatingAdmissionPolicy's spec; `operator_user_cel` is a CEL string literal."""
    return {
        "failurePolicy": "Fail",
        "paramKind": param_kind(),
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
            "resources": ["finetunejobs", "evaljobs"],
        }]},
        "matchConditions": [{
            # The operator's EvalJobs come from a FinetuneJob admitted already; the operator
            # checks them itself.
            "name": "not-the-operator",
            "expression": f"request.userInfo.username != {operator_user_cel}",
        }],
        "variables": [{"name": SELECTED, "expression": namespace_selected()}],
        "validations": validations(),
    }


def binding_spec(policy_name: str) -> dict[str, Any]:
    return {
        "policyName": policy_name,
        "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"},
        "validationActions": ["Deny"],
    }

