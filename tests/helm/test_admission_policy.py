"""The chart's ValidatingAdmissionPolicies: generated from kubetune.admission, rendered from the
same allowlists the operator is configured with, and off when admissionPolicy.enabled is."""

from __future__ import annotations

import importlib.util
import json

import pytest
from kubetune.admission.placement import glob_regex
from kubetune.admission.policy import chart_template, policy_manifests
from kubetune.operator.settings import Settings

from .chart import CHART_DIR, NAMESPACE, REPO_ROOT, VARIANTS, render

KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


def test_the_template_is_generated_from_the_rule_table():
    """Fails after a change to kubetune.admission until helm/sync-admission-policy.py runs."""
    spec = importlib.util.spec_from_file_location(
        "sync_admission_policy", REPO_ROOT / "helm" / "sync-admission-policy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (CHART_DIR / "templates" / "admission-policy.yaml").read_text() == chart_template(), (
        "helm/kubetune/templates/admission-policy.yaml is stale: "
        "run python helm/sync-admission-policy.py")
    assert module.main(["--check"]) == 0


@pytest.mark.parametrize("variant", ["default", "platform-defaults", "namespaced"])
def test_the_policy_inlines_what_the_operator_is_configured_with(variant):
    """The operator's KUBETUNE_ALLOWED_* and the policy's CEL literals come from one value each:
    rendering the policy in Python from the operator's settings gives the chart's objects."""
    rendered = render(VARIANTS[variant])
    settings = Settings.from_env(rendered.env())
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    expected = policy_manifests(settings.placement_policy, fullname="kubetune",
                                operator_user=f"system:serviceaccount:{NAMESPACE}:{account}")
    got = [m for m in rendered.manifests if m["kind"] in KINDS]
    for manifest in got:
        assert manifest["metadata"].pop("labels")["app.kubernetes.io/name"] == "kubetune"
    assert got == expected


def test_the_default_permits_exactly_the_default_trainer_image():
    values = {"trainer": {"image": "registry.example.com/mirror/trainer:0.1.0"}}
    assert Settings.from_env(render(values).env()).placement_policy.images == (
        "registry.example.com/mirror/trainer:0.1.0",)
    image_rule = render(values).of_kind("ValidatingAdmissionPolicy")[0]["spec"]["validations"][-4]
    assert json.dumps([glob_regex(values["trainer"]["image"])]) in image_rule["expression"]
    assert Settings.from_env(render().env()).placement_policy.images == (
        "ghcr.io/kubetune/trainer:0.1.0",)


def test_each_kind_is_matched_on_create_and_update_and_bound_to_deny():
    rendered = render()
    policies = {p["metadata"]["name"]: p for p in rendered.of_kind(KINDS[0])}
    bindings = rendered.of_kind(KINDS[1])
    assert {b["spec"]["policyName"] for b in bindings} == policies.keys() == {
        "kubetune-finetunejobs", "kubetune-evaljobs", "kubetune-clusterfinetunepolicies"}
    for binding in bindings:
        assert binding["spec"]["validationActions"] == ["Deny"]
    for policy in policies.values():
        (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
        assert set(rule["resources"]) <= {"finetunejobs", "evaljobs"}
        assert rule["operations"] == ["CREATE", "UPDATE"] and rule["apiGroups"] == ["kubetune.io"]
        assert policy["spec"]["failurePolicy"] == "Fail"


def test_admission_policy_off_renders_none():
    rendered = render(VARIANTS["admission-policy-off"])
    assert not [m for m in rendered.manifests if m["kind"] in KINDS]


def test_the_cluster_finetune_policy_admission_policy_renders_valid_for_1_30():
    """The ClusterFinetunePolicy rules: the policies are the params of one policy, bound to
    every policy object (selector {}), allowing requests when there is none; valid against
    Kubernetes 1.30's schemas, strictly (no field 1.30 lacks)."""
    import kubernetes_validate

    rendered = render()
    (policy,) = [p for p in rendered.of_kind(KINDS[0])
                 if p["metadata"]["name"] == "kubetune-clusterfinetunepolicies"]
    (binding,) = [b for b in rendered.of_kind(KINDS[1])
                  if b["spec"]["policyName"] == "kubetune-clusterfinetunepolicies"]
    assert policy["spec"]["paramKind"] == {"apiVersion": "kubetune.io/v1alpha1",
                                           "kind": "ClusterFinetunePolicy"}
    assert binding["spec"]["paramRef"] == {"selector": {}, "parameterNotFoundAction": "Allow"}
    assert all(v.get("messageExpression") for v in policy["spec"]["validations"])
    for manifest in (policy, binding):
        kubernetes_validate.validate(manifest, "1.30.0", strict=True)
    assert not [m for m in render(VARIANTS["admission-policy-off"]).manifests
                if m["metadata"]["name"] == "kubetune-clusterfinetunepolicies"]
