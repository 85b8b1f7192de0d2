"""Namespaces (listed, implicit and explicit) and the built-in resources the operator uses."""

from __future__ import annotations

import kubernetes
import pytest
from emulator_helpers import JOB_SPEC, POD_SPEC, RawApi


def test_a_new_cluster_has_the_four_system_namespaces(core: kubernetes.client.CoreV1Api) -> None:
    """kube-apiserver's system namespaces controller creates these four at start-up
    (pkg/controlplane/controller/systemnamespaces); the emulator starts with the same."""
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert core.read_namespace("kube-system").status.phase == "Active"


def test_creating_in_a_missing_namespace_is_not_found(http: RawApi) -> None:
    """The NamespaceLifecycle admission plugin rejects writes into a namespace that does not
    exist: 404 `namespaces "x" not found` (plugin/pkg/admission/namespace/lifecycle)."""
    response = http.post("/api/v1/namespaces/team-a/configmaps", {"metadata": {"name": "c"}})
    assert response.status_code == 404
    body = response.json()
    assert (body["reason"], body["message"]) == ("NotFound", 'namespaces "team-a" not found')
    assert body["details"] == {"name": "team-a", "kind": "namespaces"}
    assert http.get("/api/v1/namespaces/team-a").status_code == 404  # nothing made on the fly
    http.create_namespace("team-a")
    assert http.post("/api/v1/namespaces/team-a/configmaps",
                     {"metadata": {"name": "c"}}).status_code == 201


def test_explicit_namespace_creation(core: kubernetes.client.CoreV1Api) -> None:
    body = kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name="ml"))
    created = core.create_namespace(body)
    assert created.metadata.uid
    with pytest.raises(kubernetes.client.ApiException) as raised:
        core.create_namespace(body)
    assert raised.value.status == 409


def test_deleting_a_namespace_deletes_its_contents(http: RawApi) -> None:
    for namespace in ("gone", "kept"):
        http.create_namespace(namespace)
        http.post(f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "c"}})
    assert http.delete("/api/v1/namespaces/gone").status_code == 200
    assert http.get("/api/v1/namespaces/gone").status_code == 404
    assert http.get("/api/v1/namespaces/gone/configmaps/c").status_code == 404
    assert http.get("/api/v1/namespaces/kept/configmaps/c").status_code == 200


_INVOLVED = {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "default"}


@pytest.mark.parametrize(("collection", "content"), [
    ("/api/v1/namespaces/default/configmaps", {}),
    ("/api/v1/namespaces/default/secrets", {}),
    ("/api/v1/namespaces/default/services", {}),
    ("/api/v1/namespaces/default/pods", {"spec": POD_SPEC}),
    ("/api/v1/namespaces/default/events", {"involvedObject": _INVOLVED}),
    ("/api/v1/namespaces/default/persistentvolumeclaims", {}),
    ("/apis/events.k8s.io/v1/namespaces/default/events", {"eventTime": "2026-01-01T00:00:00.000000Z"}),
    ("/apis/batch/v1/namespaces/default/jobs", {"spec": JOB_SPEC}),
    ("/apis/coordination.k8s.io/v1/namespaces/default/leases", {}),
])
def test_builtin_resources_support_create_get_list_delete(
        http: RawApi, collection: str, content: dict) -> None:
    assert http.post(collection, {"metadata": {"name": "x"}, **content}).status_code == 201
    assert http.get(f"{collection}/x").status_code == 200
    assert [item["metadata"]["name"] for item in http.get(collection).json()["items"]] == ["x"]
    assert http.delete(f"{collection}/x").status_code == 200


def test_pod_status_is_written_through_the_status_subresource(
        core: kubernetes.client.CoreV1Api) -> None:
    pod = kubernetes.client.V1Pod(
        metadata=kubernetes.client.V1ObjectMeta(name="p"),
        spec=kubernetes.client.V1PodSpec(containers=[
            kubernetes.client.V1Container(name="c", image="i")]))
    assert core.create_namespaced_pod("default", pod).status.phase == "Pending"
    core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running"}})
    assert core.read_namespaced_pod("p", "default").status.phase == "Running"


def test_core_discovery_lists_builtins_with_status_subresources(http: RawApi) -> None:
    resources = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert {"namespaces", "configmaps", "pods", "pods/status", "events"} <= set(resources)
    assert resources["namespaces"]["namespaced"] is False
    assert http.get("/api/v1").json()["groupVersion"] == "v1"
    assert http.get("/api").json()["versions"] == ["v1"]


def test_a_namespace_is_labelled_with_its_own_name_whatever_the_request_says(http):
    """kube-apiserver sets kubernetes.io/metadata.name on every Namespace, on create and on
    update (https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name),
    so label selectors (ClusterFinetunePolicy namespaceSelector) can pick namespaces by name."""
    created = http.post("/api/v1/namespaces", {"metadata": {"name": "team-x",
                                                            "labels": {"tier": "gpu"}}})
    assert created.json()["metadata"]["labels"] == {
        "tier": "gpu", "kubernetes.io/metadata.name": "team-x"}
    patched = http.patch("/api/v1/namespaces/team-x", {"metadata": {"labels": {
        "kubernetes.io/metadata.name": "other"}}})
    assert patched.json()["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-x"
    listed = http.get("/api/v1/namespaces", labelSelector="kubernetes.io/metadata.name=team-x")
    assert [n["metadata"]["name"] for n in listed.json()["items"]] == ["team-x"]
