"""RBAC mode: each request is authorized against the stored Roles/ClusterRoles and bindings,
and OwnerReferencesPermissionEnforcement guards blockOwnerDeletion, as kube-apiserver with
`--authorization-mode=RBAC --enable-admission-plugins=OwnerReferencesPermissionEnforcement`.

References: https://kubernetes.io/docs/reference/access-authn-authz/rbac/ (rules, subresources,
resourceNames, RoleBinding vs ClusterRoleBinding scope, service-account user names),
https://kubernetes.io/docs/reference/access-authn-authz/authentication/ (401 for a bad token,
system:anonymous), https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#ownerreferencespermissionenforcement,
and the message formats of responsewriters/errors.go and plugin/pkg/admission/gc/gc_admission.go.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from emulator_helpers import JOB_SPEC, WIDGET_CRD, RawApi, widget
from kubetune.emulator import ApiServerEmulator, EmulatorThread
from kubetune.emulator.authorization import service_account_user
from kubetune.emulator.kubeconfig import DUMMY_TOKEN

RBAC = "/apis/rbac.authorization.k8s.io/v1"
SA = "system:serviceaccount:ops:operator"
JOBS = "/apis/batch/v1/namespaces/team-a/jobs"
CONFIGMAPS = "/api/v1/namespaces/team-a/configmaps"


class Session(RawApi):
    def __init__(self, base_url: str, token: str | None) -> None:
        session = requests.Session()
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        super().__init__(base_url, session)


@pytest.fixture
def rbac_cluster() -> Iterator[EmulatorThread]:
    with EmulatorThread(ApiServerEmulator(rbac=True)) as running:
        yield running


@pytest.fixture
def admin(rbac_cluster: EmulatorThread) -> RawApi:
    api = Session(rbac_cluster.url, DUMMY_TOKEN)
    for namespace in ("team-a", "team-b", "ops"):
        assert api.post("/api/v1/namespaces", {"metadata": {"name": namespace}}).status_code == 201
    return api


@pytest.fixture
def operator(rbac_cluster: EmulatorThread, admin: RawApi) -> RawApi:
    token = rbac_cluster.call(lambda e: e.authenticator.issue_token(service_account_user("ops", "operator")))
    return Session(rbac_cluster.url, token)


def grant(admin: RawApi, rules: list[dict[str, Any]], namespace: str | None = None,
          name: str = "operator") -> None:
    """A (Cluster)Role with these rules, bound to the ops/operator ServiceAccount."""
    subject = {"kind": "ServiceAccount", "name": "operator", "namespace": "ops"}
    if namespace is None:
        admin.post(f"{RBAC}/clusterroles", {"metadata": {"name": name}, "rules": rules})
        admin.post(f"{RBAC}/clusterrolebindings", {
            "metadata": {"name": name}, "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}})
    else:
        admin.post(f"{RBAC}/namespaces/{namespace}/roles", {"metadata": {"name": name}, "rules": rules})
        admin.post(f"{RBAC}/namespaces/{namespace}/rolebindings", {
            "metadata": {"name": name}, "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}})


def rule(group: str, resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs, **extra}


def assert_forbidden(response: requests.Response, message: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["kind"] == "Status" and body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"] == message


def test_no_binding_means_403_with_the_api_servers_message(operator: RawApi) -> None:
    assert_forbidden(
        operator.post(JOBS, {"metadata": {"name": "x"}, "spec": JOB_SPEC}),
        f'jobs.batch is forbidden: User "{SA}" cannot create resource "jobs" in API group "batch"'
        ' in the namespace "team-a"')
    assert_forbidden(
        operator.get(f"{CONFIGMAPS}/cfg"),
        f'configmaps "cfg" is forbidden: User "{SA}" cannot get resource "configmaps" in API group ""'
        ' in the namespace "team-a"')
    assert_forbidden(
        operator.get("/api/v1/pods", watch="true"),
        f'pods is forbidden: User "{SA}" cannot watch resource "pods" in API group "" at the cluster scope')


def test_the_admin_kubeconfig_is_unrestricted(admin: RawApi) -> None:
    """kubectl and the executor use the admin token: system:masters bypasses RBAC."""
    assert admin.post(JOBS, {"metadata": {"name": "x"}, "spec": JOB_SPEC}).status_code == 201
    assert admin.delete(f"{JOBS}/x").status_code == 200


def test_unknown_token_is_401(rbac_cluster: EmulatorThread, admin: RawApi) -> None:
    response = Session(rbac_cluster.url, "forged").get(CONFIGMAPS)
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"


def test_the_admin_may_impersonate_and_others_may_not(rbac_cluster: EmulatorThread, admin: RawApi,
                                                      operator: RawApi) -> None:
    """kubectl --as=system:serviceaccount:ops:operator: the request is authorized as that
    account, with its groups (a Group binding to system:serviceaccounts:ops applies)."""
    as_operator = Session(rbac_cluster.url, None)
    as_operator.session.headers["Impersonate-User"] = SA
    assert_forbidden(
        as_operator.get(CONFIGMAPS),
        f'configmaps is forbidden: User "{SA}" cannot list resource "configmaps" in API group ""'
        ' in the namespace "team-a"')
    admin.post(f"{RBAC}/clusterroles", {"metadata": {"name": "reader"},
                                         "rules": [rule("", ["configmaps"], ["list"])]})
    admin.post(f"{RBAC}/clusterrolebindings", {
        "metadata": {"name": "reader"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ops"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"}})
    assert as_operator.get(CONFIGMAPS).status_code == 200
    operator.session.headers["Impersonate-User"] = "kubernetes-admin"
    assert operator.get(CONFIGMAPS).status_code == 403


def test_cluster_role_grants_exactly_its_verbs(admin: RawApi, operator: RawApi) -> None:
    grant(admin, [rule("batch", ["jobs"], ["create", "get"])])
    assert operator.post(JOBS, {"metadata": {"name": "x"}, "spec": JOB_SPEC}).status_code == 201
    assert operator.get(f"{JOBS}/x").status_code == 200
    assert operator.get("/apis/batch/v1/namespaces/team-b/jobs/x").status_code == 404
    assert_forbidden(
        operator.delete(f"{JOBS}/x"),
        f'jobs.batch "x" is forbidden: User "{SA}" cannot delete resource "jobs" in API group'
        ' "batch" in the namespace "team-a"')
    assert operator.get(JOBS).status_code == 403  # list is another verb


def test_a_role_binding_grants_in_its_own_namespace_only(admin: RawApi, operator: RawApi) -> None:
    grant(admin, [rule("", ["configmaps"], ["list"])], namespace="team-a")
    assert operator.get(CONFIGMAPS).status_code == 200
    assert operator.get("/api/v1/namespaces/team-b/configmaps").status_code == 403
    assert operator.get("/api/v1/configmaps").status_code == 403  # all namespaces: cluster scope


def test_subresources_need_their_own_rule(admin: RawApi, operator: RawApi) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert admin.post(crds, WIDGET_CRD).status_code == 201
    widgets = "/apis/example.com/v1/namespaces/team-a/widgets"
    admin.post(widgets, widget("w", size=1))
    grant(admin, [rule("example.com", ["widgets"], ["get", "patch"])])
    assert operator.patch(f"{widgets}/w", {"spec": {"size": 2}}).status_code == 200
    assert_forbidden(
        operator.patch(f"{widgets}/w/status", {"status": {"ok": True}}),
        f'widgets.example.com "w" is forbidden: User "{SA}" cannot patch resource "widgets/status"'
        ' in API group "example.com" in the namespace "team-a"')
    grant(admin, [rule("example.com", ["widgets/status"], ["patch"])], name="status-writer")
    assert operator.patch(f"{widgets}/w/status", {"status": {"ok": True}}).status_code == 200


def test_resource_names_limit_a_rule_to_those_objects(admin: RawApi, operator: RawApi) -> None:
    for name in ("mine", "theirs"):
        admin.post(CONFIGMAPS, {"metadata": {"name": name}})
    grant(admin, [rule("", ["configmaps"], ["get", "list"], resourceNames=["mine"])])
    assert operator.get(f"{CONFIGMAPS}/mine").status_code == 200
    assert operator.get(f"{CONFIGMAPS}/theirs").status_code == 403
    assert operator.get(CONFIGMAPS).status_code == 403  # a list names no object
    assert operator.get(CONFIGMAPS, fieldSelector="metadata.name=mine").status_code == 200


def _owned_job(owner: dict[str, Any], name: str, block: bool) -> dict[str, Any]:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True}
    if block:
        ref["blockOwnerDeletion"] = True
    return {"metadata": {"name": name, "ownerReferences": [ref]}, "spec": JOB_SPEC}


def test_block_owner_deletion_needs_update_on_the_owners_finalizers(admin: RawApi, operator: RawApi) -> None:
    """OwnerReferencesPermissionEnforcement: create may set ownerReferences, but
    blockOwnerDeletion: true needs `update` on `<owner resource>/finalizers` by name."""
    owner = admin.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    grant(admin, [rule("batch", ["jobs"], ["create", "patch"])])
    assert operator.post(JOBS, _owned_job(owner, "plain", block=False)).status_code == 201
    assert_forbidden(
        operator.post(JOBS, _owned_job(owner, "blocking", block=True)),
        'jobs.batch "blocking" is forbidden: cannot set blockOwnerDeletion if an ownerReference'
        " refers to a resource you can't set finalizers on: , <nil>")
    grant(admin, [rule("", ["configmaps/finalizers"], ["update"], resourceNames=["other"])], name="other")
    assert operator.post(JOBS, _owned_job(owner, "blocking", block=True)).status_code == 403
    grant(admin, [rule("", ["configmaps/finalizers"], ["update"])], name="finalizers")
    assert operator.post(JOBS, _owned_job(owner, "blocking", block=True)).status_code == 201


def test_changing_owner_references_needs_delete_on_the_object(admin: RawApi, operator: RawApi) -> None:
    owner = admin.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    assert admin.post(JOBS, {"metadata": {"name": "job"}, "spec": JOB_SPEC}).status_code == 201
    grant(admin, [rule("batch", ["jobs"], ["patch"])])
    refs = _owned_job(owner, "job", block=False)["metadata"]["ownerReferences"]
    assert operator.patch(f"{JOBS}/job", {"metadata": {"labels": {"a": "b"}}}).status_code == 200
    assert_forbidden(
        operator.patch(f"{JOBS}/job", {"metadata": {"ownerReferences": refs}}),
        "jobs.batch \"job\" is forbidden: cannot set an ownerRef on a resource you can't delete: , <nil>")
    grant(admin, [rule("batch", ["jobs"], ["delete"])], name="deleter")
    assert operator.patch(f"{JOBS}/job", {"metadata": {"ownerReferences": refs}}).status_code == 200
