"""Each ClusterFinetunePolicy rule at both layers, on one table of cases (cases.py): the
operator's check (kubetune.policies.rules) and the chart's ValidatingAdmissionPolicy, whose CEL
is what the chart ships (`policy_manifests` renders the generated template; tests/helm checks
they agree), evaluated by the emulator's evaluator with cel-python.

kube-apiserver evaluates a policy with paramKind once per parameter object the binding's
paramRef selects, with that object as `params`, and `namespaceObject` as the request's
Namespace; the first denied evaluation answers
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/,
"Parameter resources"; staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating/
dispatcher.go). So the admission policy's message is the operator's first violation.
"""

from __future__ import annotations

import pytest
from kubetune.admission.placement import PlacementPolicy
from kubetune.admission.policy import policy_manifests
from kubetune.emulator import admission_policies, errors
from kubetune.emulator.resources import ResourceType
from kubetune.policies.rules import RULES, all_violations
from kubetune.validation import validate_document

from ..admission.objects import Requester
from .cases import BASES, CASES, NAMESPACE, Case

MANIFESTS = policy_manifests(PlacementPolicy(images=("*",)))
VAP = next(m for m in MANIFESTS if m["metadata"]["name"] == "kubetune-clusterfinetunepolicies"
           and m["kind"] == "ValidatingAdmissionPolicy")
BINDING = next(m for m in MANIFESTS if m["metadata"]["name"] == VAP["metadata"]["name"]
               and m["kind"] == "ValidatingAdmissionPolicyBinding")
RTYPES = {kind: ResourceType("kubetune.io", "v1alpha1", kind.lower() + "s", kind, True,
                             kind.lower()) for kind in BASES}


def _ids(case: Case) -> str:
    return case.id


def admission(case: Case) -> errors.ApiError | None:
    job = case.job()
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": NAMESPACE, "labels": case.labels}}
    try:
        admission_policies.check(
            [VAP], [BINDING], "UPDATE" if case.old_changes is not None else "CREATE",
            RTYPES[case.kind], case.labels, job, case.old(), Requester("alice"),
            lambda user, check: True, namespace_object=namespace,
            find_params=lambda kind, ref, ns: [dict(p) for p in case.policies])
    except errors.ApiError as error:
        return error
    return None


def test_the_base_jobs_are_valid():
    for obj in BASES.values():
        assert validate_document(obj) == []


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_the_operator_check(case):
    found = all_violations(case.kind, case.job(), case.policies, case.labels, case.old())
    assert [(v.policy, v.field) for v in found] == list(case.broken)
    for violation in found:
        assert violation.message.startswith(
            f"ClusterFinetunePolicy {violation.policy}: {violation.field} must ")
        assert violation.message.endswith(")") and violation.setting in violation.message


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_the_admission_policy(case):
    refused = admission(case)
    if not case.broken:
        assert refused is None, refused
        return
    assert refused is not None, "admitted"
    first = all_violations(case.kind, case.job(), case.policies, case.labels, case.old())[0]
    assert refused.code == 403
    name = case.job()["metadata"]["name"]
    assert refused.message == (
        f'{case.kind.lower()}s.kubetune.io "{name}" is forbidden: '
        "ValidatingAdmissionPolicy 'kubetune-clusterfinetunepolicies' with binding "
        f"'kubetune-clusterfinetunepolicies' denied request: {first.message}")


def test_every_rule_is_broken_by_some_case():
    broken = {(case.kind, field) for case in CASES for _, field in case.broken}
    assert {(rule.kind, rule.field) for rule in RULES} - broken == set()
