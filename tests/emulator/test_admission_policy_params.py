"""ValidatingAdmissionPolicy with parameters, `namespaceObject`, `variables` and
`messageExpression`, as kube-apiserver evaluates them.

Kubernetes docs, "Validating Admission Policy"
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/):
- "Parameter resources": a policy's `paramKind` names the kind of its parameters; the
  binding's `paramRef` selects them by `name` or by label `selector` (in `namespace` for a
  namespaced kind). "If multiple parameter resources match, the policy is evaluated against
  each of them", with the parameter as `params`, and the request is denied if any evaluation
  fails. `parameterNotFoundAction`: `Allow` lets a request through when nothing matches,
  `Deny` denies it.
- "Variable composition": `spec.variables`, read as `variables.NAME`.
- "Message expression": "If messageExpression results in a runtime error ... or evaluates to
  an empty string, a string with only spaces, or a string that contains line breaks", the
  validation's `message` is used instead.
- CEL variables: `namespaceObject` is the Namespace the request's object belongs to.
"""

from __future__ import annotations

from typing import Any

import pytest

JOBS = "/apis/batch/v1/namespaces/team-a/jobs"
POLICIES = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
BINDINGS = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
CONFIG_MAPS = "/api/v1/namespaces/limits/configmaps"
MAX_PARALLELISM = ("!has(object.spec.parallelism) || "
                   "object.spec.parallelism <= int(params.data.maxParallelism)")


def _policy(validation: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "limits"},
            "spec": {"failurePolicy": "Fail", "paramKind": {"apiVersion": "v1",
                                                             "kind": "ConfigMap"},
                     "validations": [validation], "matchConstraints": {"resourceRules": [{
                         "apiGroups": ["batch"], "apiVersions": ["v1"],
                         "operations": ["CREATE"], "resources": ["jobs"]}]}, **spec}}


def _binding(param_ref: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyName": "limits", "validationActions": ["Deny"]}
    if param_ref is not None:
        spec["paramRef"] = param_ref
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "limits-binding"},
            "spec": spec}


def _limit(name: str, parallelism: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {"kind": "limit"}},
            "data": {"maxParallelism": str(parallelism)}}


def _job(name: str, parallelism: int) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"parallelism": parallelism, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}


BY_LIMIT = {"namespace": "limits", "selector": {"matchLabels": {"kind": "limit"}},
            "parameterNotFoundAction": "Allow"}
NAMED = {"expression": MAX_PARALLELISM, "message": "too parallel",
         "messageExpression": "'limit ' + params.metadata.name + ': at most ' + "
                              "params.data.maxParallelism"}


@pytest.fixture(autouse=True)
def namespaces(http) -> None:
    http.create_namespace("team-a")
    http.create_namespace("limits")


def test_every_selected_parameter_is_evaluated_and_any_failure_denies(http):
    assert http.post(CONFIG_MAPS, _limit("loose", 8)).ok
    assert http.post(CONFIG_MAPS, _limit("tight", 2)).ok
    assert http.post(CONFIG_MAPS, _limit("unselected", 1, {"kind": "other"})).ok
    assert http.post(POLICIES, _policy(NAMED)).ok
    assert http.post(BINDINGS, _binding(BY_LIMIT)).ok
    assert http.post(JOBS, _job("two", 2)).status_code == 201  # "unselected" (1) is not a param
    denied = http.post(JOBS, _job("four", 4))
    assert denied.status_code == 422
    assert denied.json()["message"] == (
        'jobs.batch "four" is forbidden: '
        "ValidatingAdmissionPolicy 'limits' with binding 'limits-binding' denied request: "
        "limit tight: at most 2")


def test_a_param_ref_by_name_selects_that_object_only(http):
    http.post(CONFIG_MAPS, _limit("loose", 8))
    http.post(CONFIG_MAPS, _limit("tight", 2))
    http.post(POLICIES, _policy(NAMED))
    http.post(BINDINGS, _binding({"namespace": "limits", "name": "loose",
                                  "parameterNotFoundAction": "Deny"}))
    assert http.post(JOBS, _job("four", 4)).status_code == 201


def test_no_parameter_found_allows_or_denies_as_the_binding_says(http):
    http.post(POLICIES, _policy(NAMED))
    http.post(BINDINGS, _binding(BY_LIMIT))
    assert http.post(JOBS, _job("allowed", 4)).status_code == 201
    binding = _binding({**BY_LIMIT, "parameterNotFoundAction": "Deny"})
    binding["metadata"]["name"] = "strict"
    http.post(BINDINGS, binding)
    denied = http.post(JOBS, _job("denied", 4))
    assert denied.status_code == 422
    assert "no params found for policy binding with `Deny` parameterNotFoundAction" in (
        denied.json()["message"])


def test_a_policy_with_param_kind_and_a_binding_without_param_ref_denies(http):
    http.post(CONFIG_MAPS, _limit("loose", 8))
    http.post(POLICIES, _policy(NAMED))
    http.post(BINDINGS, _binding(None))
    assert http.post(JOBS, _job("x", 1)).status_code == 422


def test_namespace_object_and_variables(http):
    """The namespace's labels decide here, through a variable."""
    http.post(CONFIG_MAPS, _limit("tight", 2))
    http.post(POLICIES, _policy(
        {"expression": "!variables.limited || " + MAX_PARALLELISM, "message": "too parallel"},
        variables=[{"name": "limited", "expression":
                    "has(namespaceObject.metadata.labels) && "
                    "'limited' in namespaceObject.metadata.labels"}]))
    http.post(BINDINGS, _binding(BY_LIMIT))
    assert http.post(JOBS, _job("free", 4)).status_code == 201
    assert http.patch("/api/v1/namespaces/team-a",
                      {"metadata": {"labels": {"limited": "yes"}}}).ok
    assert http.post(JOBS, _job("limited", 4)).status_code == 422


@pytest.mark.parametrize("expression", [
    "params.data.missing",  # a runtime error (no such key)
    "'  '",                 # only spaces
    "'two\\nlines'",        # a line break
])
def test_a_message_expression_that_fails_or_is_blank_falls_back_to_message(http, expression):
    http.post(CONFIG_MAPS, _limit("tight", 2))
    http.post(POLICIES, _policy({**NAMED, "messageExpression": expression}))
    http.post(BINDINGS, _binding(BY_LIMIT))
    denied = http.post(JOBS, _job("four", 4))
    assert denied.json()["message"].endswith("denied request: too parallel")


def test_strings_library_replace_and_join(http):
    """cel-go's strings extension, which Kubernetes enables
    (https://kubernetes.io/docs/reference/using-api/cel/#kubernetes-list-library and
    https://pkg.go.dev/github.com/google/cel-go/ext#Strings): replace and join."""
    http.post(CONFIG_MAPS, _limit("tight", 2))
    http.post(POLICIES, _policy({
        "expression": "false", "message": "m",
        "messageExpression": "['a.b', 'c'].join(', ').replace('.', '-') + ['x', 'y'].join()"}))
    http.post(BINDINGS, _binding(BY_LIMIT))
    assert http.post(JOBS, _job("x", 1)).json()["message"].endswith("denied request: a-b, cxy")
