"""The operator needs every permission the chart grants it for children: without `update` on
`finetunejobs/finalizers`, creating a child with `blockOwnerDeletion: true` is a 403.

Every operator test here runs under the chart's own ClusterRole in the emulator's RBAC mode
(conftest.py), which proves the grants suffice; this file takes one away and watches the
operator's create fail the way a real API server with the OwnerReferencesPermissionEnforcement
admission plugin (on by default in OpenShift) refuses it:
https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#ownerreferencespermissionenforcement
and https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources
(subresources such as `finalizers` are granted as `resource/subresource`).
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
from kubetune.local.chart import OperatorRbac

from .cluster import FINETUNE_JOB, condition

FINALIZERS = "finetunejobs/finalizers"


def without_resource(rbac: OperatorRbac, resource: str) -> OperatorRbac:
    """The chart's RBAC with every rule on `resource` gone (the chart before the fix)."""
    manifests = []
    for manifest in copy.deepcopy(rbac.manifests):
        if manifest["kind"] in ("ClusterRole", "Role"):
            manifest["rules"] = [rule for rule in manifest["rules"] if resource not in rule["resources"]]
        manifests.append(manifest)
    return dataclasses.replace(rbac, manifests=tuple(manifests))


def granted_resources(rbac: OperatorRbac) -> set[str]:
    return {resource for manifest in rbac.manifests if manifest["kind"] == "ClusterRole"
            for rule in manifest["rules"] for resource in rule["resources"]}


@pytest.fixture
def operator_rbac_manifests(chart_rbac: OperatorRbac) -> OperatorRbac:
    assert FINALIZERS in granted_resources(chart_rbac)  # the chart grants it...
    reduced = without_resource(chart_rbac, FINALIZERS)
    assert FINALIZERS not in granted_resources(reduced)  # ...and here it does not
    return reduced


def test_without_update_on_finalizers_children_are_forbidden(api, operator):
    api.create(FINETUNE_JOB)
    status = api.wait_condition("FinetuneJob", "router", "Running", "False", "Forbidden")
    message = condition({"status": status}, "Running")["message"]
    assert "HTTP 403" in message
    assert ("cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't"
            " set finalizers on") in message
    assert "finalizers" in status["failure"]["hint"]
    assert api.jobs() == []
