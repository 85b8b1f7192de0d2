"""ValidatingAdmissionPolicy: a bound policy denies a create with its message and reason.

Kubernetes docs, "Validating Admission Policy"
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/): a
policy does nothing without a binding; a failed validation with `validationActions: [Deny]`
rejects the request, by default with reason Invalid (HTTP 422); `reason: Forbidden` gives
403. Message format from kube-apiserver's validating policy dispatcher.
"""

from __future__ import annotations

from typing import Any

import pytest

JOBS = "/apis/batch/v1/namespaces/team-a/jobs"
POLICIES = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
BINDINGS = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"


def _policy(name: str, expression: str, message: str, reason: str | None = None) -> dict[str, Any]:
    validation = {"expression": expression, "message": message}
    if reason:
        validation["reason"] = reason
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {"failurePolicy": "Fail", "validations": [validation], "matchConstraints": {
                "resourceRules": [{"apiGroups": ["batch"], "apiVersions": ["v1"],
                                   "operations": ["CREATE", "UPDATE"], "resources": ["jobs"]}]}}}


def _binding(name: str, policy: str) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
            "spec": {"policyName": policy, "validationActions": ["Deny"]}}


def _job(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox"}]}}}}


@pytest.fixture(autouse=True)
def team_a(http) -> None:
    http.create_namespace("team-a")  # objects can only be created in a namespace that exists


NEEDS_TEAM = "has(object.metadata.labels) && 'team' in object.metadata.labels"


def test_a_bound_policy_denies_with_422_and_the_policy_message(http):
    assert http.post(POLICIES, _policy("need-team", NEEDS_TEAM, "Jobs need a team label")).ok
    assert http.post(BINDINGS, _binding("need-team-everywhere", "need-team")).ok

    denied = http.post(JOBS, _job("no-team"))
    assert denied.status_code == 422
    body = denied.json()
    assert body["reason"] == "Invalid"
    # The prefix is admission.NewForbidden's, which kube-apiserver puts before every
    # admission plugin's refusal (staging/src/k8s.io/apiserver/pkg/admission/errors.go).
    assert body["message"] == ('jobs.batch "no-team" is forbidden: '
                               "ValidatingAdmissionPolicy 'need-team' with binding "
                               "'need-team-everywhere' denied request: Jobs need a team label")
    assert http.post(JOBS, _job("with-team", {"team": "a"})).status_code == 201
    assert http.get(f"{JOBS}/no-team").status_code == 404


def test_reason_forbidden_gives_403(http):
    http.post(POLICIES, _policy("no-jobs", "false", "Jobs are not allowed here", "Forbidden"))
    http.post(BINDINGS, _binding("no-jobs", "no-jobs"))
    denied = http.post(JOBS, _job("x"))
    assert denied.status_code == 403 and denied.json()["reason"] == "Forbidden"


def test_a_policy_without_binding_denies_nothing(http):
    http.post(POLICIES, _policy("need-team", NEEDS_TEAM, "Jobs need a team label"))
    assert http.post(JOBS, _job("no-team")).status_code == 201


def test_policies_match_only_their_resources(http):
    http.post(POLICIES, _policy("no-jobs", "false", "no Jobs"))
    http.post(BINDINGS, _binding("no-jobs", "no-jobs"))
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert http.post("/api/v1/namespaces/team-a/configmaps", config_map).status_code == 201


def test_updates_are_judged_with_the_old_object_and_status_writes_are_not(http):
    """On UPDATE `oldObject` is the stored object; a rule on `jobs` does not match a write to
    `jobs/status` (a subresource is matched only when named, e.g. `jobs/status`)."""
    keep_team = ("request.operation != 'UPDATE' || "
                 "object.metadata.labels['team'] == oldObject.metadata.labels['team']")
    http.post(POLICIES, _policy("keep-team", keep_team, "the team label is immutable"))
    http.post(BINDINGS, _binding("keep-team", "keep-team"))
    assert http.post(JOBS, _job("j", {"team": "a"})).status_code == 201
    assert http.patch(f"{JOBS}/j", {"metadata": {"labels": {"other": "x"}}}).status_code == 200
    denied = http.patch(f"{JOBS}/j", {"metadata": {"labels": {"team": "b"}}})
    assert denied.status_code == 422 and "the team label is immutable" in denied.json()["message"]
    status = http.patch(f"{JOBS}/j/status", {"status": {"active": 1}})
    assert status.status_code == 200, status.text


def test_match_conditions_and_user_info(http):
    """matchConditions gate the policy; request.userInfo is the requester (the admin here)."""
    policy = _policy("not-admin", "false", "nobody but the admin")
    policy["spec"]["matchConditions"] = [
        {"name": "not-the-admin", "expression": "request.userInfo.username != 'kubernetes-admin'"}]
    http.post(POLICIES, policy)
    http.post(BINDINGS, _binding("not-admin", "not-admin"))
    assert http.post(JOBS, _job("by-admin")).status_code == 201
