"""The chart's ValidatingAdmissionPolicy, evaluated offline: each field that names a Secret, a
PVC or a FinetuneJob is refused for a requester who may not `get` that object, and allowed for
one who may.

The CEL is exactly what the chart ships (`policy_manifests` renders the generated template's
objects; tests/helm checks the two agree), evaluated by the emulator's policy evaluator with
cel-python, where `authorizer` asks a table (the "Authorizer" variable of
https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/ and the
authz library, staging/src/k8s.io/apiserver/pkg/cel/library/authz.go).
"""

from __future__ import annotations

import copy

import pytest
from kubetune.admission.placement import PlacementPolicy
from kubetune.admission.policy import policy_manifests
from kubetune.admission.rules import RULES
from kubetune.api.resources import RESOURCES
from kubetune.emulator import admission_policies, errors
from kubetune.emulator.resources import ResourceType
from kubetune.validation import validate_document

from .objects import BASES, FLAG_RULES, NAMESPACE, NAMING_RULES, Grants, Requester, naming

OPERATOR = "system:serviceaccount:kubetune-system:kubetune"
ALICE = Requester("alice")
MANIFESTS = policy_manifests(PlacementPolicy(images=("ghcr.io/kubetune/trainer:0.1.0",)),
                             operator_user=OPERATOR)
POLICIES = [m for m in MANIFESTS if m["kind"] == "ValidatingAdmissionPolicy"]
BINDINGS = [m for m in MANIFESTS if m["kind"] == "ValidatingAdmissionPolicyBinding"]
RTYPES = {r.kind: ResourceType("kubetune.io", "v1alpha1", r.plural, r.kind, True, r.kind.lower())
          for r in RESOURCES.values()}


def admit(grants: Grants, obj: dict, old: dict | None = None, user=ALICE) -> None:
    admission_policies.check(POLICIES, BINDINGS, "UPDATE" if old else "CREATE",
                             RTYPES[obj["kind"]], {}, obj, old, user, grants.decide)


def refusal(grants: Grants, obj: dict, old: dict | None = None, user=ALICE) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        admit(grants, obj, old, user)
    return caught.value


def rule_id(rule):
    return f"{rule.kind}:{rule.field}"


def test_the_base_jobs_are_valid_and_name_nothing():
    for obj in BASES.values():
        assert validate_document(copy.deepcopy(obj)) == []
        admit(Grants(), obj)  # nobody needs any right for them


@pytest.mark.parametrize("rule", NAMING_RULES, ids=rule_id)
def test_naming_an_object_without_get_on_it_is_refused(rule):
    obj = naming(rule, "the-object")
    assert validate_document(copy.deepcopy(obj)) == []
    grants = Grants()
    grants.grant("alice", rule, "another-object")  # a right on a different name does not count
    error = refusal(grants, obj)
    assert error.code == 403 and error.reason == "Forbidden"
    assert error.message.endswith(f"denied request: {rule.message}")
    assert rule.field in error.message and f"{rule.verb} {rule.resource}" in error.message
    assert any(c.resource == rule.resource and c.name == "the-object" and
               c.namespace == NAMESPACE and c.verb == "get" for c in grants.asked)


@pytest.mark.parametrize("rule", NAMING_RULES, ids=rule_id)
def test_naming_an_object_with_get_on_it_is_allowed(rule):
    grants = Grants()
    grants.grant("alice", rule, "the-object")
    admit(grants, naming(rule, "the-object"))


@pytest.mark.parametrize("rule", NAMING_RULES, ids=rule_id)
def test_get_in_another_namespace_does_not_count(rule):
    grants = Grants()
    grants.grant("alice", rule, "the-object", namespace="team-b")
    refusal(grants, naming(rule, "the-object"))


@pytest.mark.parametrize("rule", NAMING_RULES, ids=rule_id)
def test_an_update_that_keeps_the_field_needs_nothing_and_one_that_changes_it_is_checked(rule):
    old = naming(rule, "the-object")
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"touched": "yes"}
    admit(Grants(), new, old)
    error = refusal(Grants(), naming(rule, "other-object"), old)
    assert rule.message in error.message


@pytest.mark.parametrize("rule", NAMING_RULES, ids=rule_id)
def test_the_operator_itself_is_not_checked(rule):
    """It creates the EvalJob of spec.evaluation, checked when its author wrote it."""
    admit(Grants(), naming(rule, "the-object"), user=Requester(
        OPERATOR, ("system:serviceaccounts", "system:serviceaccounts:kubetune-system")))


def test_a_pvc_uri_is_checked_by_its_claim_and_other_schemes_name_no_claim():
    rule = next(r for r in RULES if r.field == "spec.dataset.uri" and r.kind == "FinetuneJob")
    grants = Grants()
    grants.grant("alice", rule, "shared-data")
    obj = naming(rule, "shared-data")
    obj["spec"]["dataset"]["uri"] = "pvc://shared-data/deep/down/train.jsonl"
    admit(grants, obj)
    obj["spec"]["dataset"]["uri"] = "s3://shared-data/train.jsonl"
    admit(Grants(), obj)


def test_every_item_of_a_list_is_checked_and_an_item_kept_on_update_needs_nothing():
    """spec.benchmarks[]: one custom task the requester may read does not let another through;
    reordering the list or appending a task keeps the old items' names admitted."""
    rule = next(r for r in RULES if r.field == "spec.benchmarks[].uri")
    grants = Grants()
    grants.grant("alice", rule, "mine")
    obj = naming(rule, "mine")
    theirs = {"uri": "pvc://theirs/mc.jsonl", "format": "multiple-choice", "name": "theirs"}
    obj["spec"]["benchmarks"].append(theirs)
    assert validate_document(copy.deepcopy(obj)) == []
    error = refusal(grants, obj)
    assert rule.message in error.message
    assert [c.name for c in grants.asked if c.resource == rule.resource][-1] == "theirs"

    old = copy.deepcopy(obj)
    reordered = copy.deepcopy(old)
    reordered["spec"]["benchmarks"].reverse()
    admit(Grants(), reordered, old)
    grown = copy.deepcopy(old)
    grown["spec"]["benchmarks"].append({**theirs, "uri": "pvc://other/mc.jsonl", "name": "other"})
    assert rule.message in refusal(Grants(), grown, old).message


@pytest.mark.parametrize("rule", FLAG_RULES, ids=lambda r: r.resource)
def test_serving_create_needs_create_on_the_kind_and_is_not_asked_again_once_set(rule):
    """kubetune creates the KServe object for its requester only if they could themselves."""
    obj = naming(rule, "unused")
    assert validate_document(copy.deepcopy(obj)) == []
    grants = Grants()
    error = refusal(grants, obj)
    assert error.message.endswith(f"denied request: {rule.message}")
    # (cel-python evaluates every branch, so other rules' checks are asked too.)
    assert {(c.verb, c.group, c.name) for c in grants.asked if c.resource == rule.resource} == {
        ("create", "serving.kserve.io", None)}
    grants.grant("alice", rule, "")
    admit(grants, obj)
    kept = copy.deepcopy(obj)
    kept["metadata"]["labels"] = {"touched": "yes"}
    admit(Grants(), kept, obj)
    off = copy.deepcopy(obj)
    off["spec"]["output"]["serving"]["create"] = False
    admit(Grants(), off)
    assert rule.message in refusal(Grants(), obj, off).message
