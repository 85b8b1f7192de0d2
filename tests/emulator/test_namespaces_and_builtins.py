"""Namespaces (listed, implicit and explicit) and the built-in resources the operator uses."""

from __future__ import annotations

import kubernetes
import pytest
from emulator_helpers import RawApi


def test_namespaces_list_includes_default_and_implicit_ones(
        core: kubernetes.client.CoreV1Api, http: RawApi) -> None:
    http.post("/api/v1/namespaces/team-a/configmaps", {"metadata": {"name": "c"}})
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert names == ["default", "team-a"]
    assert core.read_namespace("team-a").status.phase == "Active"


def test_explicit_namespace_creation(core: kubernetes.client.CoreV1Api) -> None:
    body = kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name="ml"))
    created = core.create_namespace(body)
    assert created.metadata.uid
    with pytest.raises(kubernetes.client.ApiException) as raised:
        core.create_namespace(body)
    assert raised.value.status == 409


def test_deleting_a_namespace_deletes_its_contents(http: RawApi) -> None:
    http.post("/api/v1/namespaces/gone/configmaps", {"metadata": {"name": "c"}})
    http.post("/api/v1/namespaces/kept/configmaps", {"metadata": {"name": "c"}})
    assert http.delete("/api/v1/namespaces/gone").status_code == 200
    assert http.get("/api/v1/namespaces/gone").status_code == 404
    assert http.get("/api/v1/namespaces/gone/configmaps/c").status_code == 404
    assert http.get("/api/v1/namespaces/kept/configmaps/c").status_code == 200


@pytest.mark.parametrize("collection", [
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/secrets",
    "/api/v1/namespaces/default/services",
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/events",
    "/api/v1/namespaces/default/persistentvolumeclaims",
    "/apis/events.k8s.io/v1/namespaces/default/events",
    "/apis/batch/v1/namespaces/default/jobs",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases",
])
def test_builtin_resources_support_create_get_list_delete(http: RawApi, collection: str) -> None:
    assert http.post(collection, {"metadata": {"name": "x"}}).status_code == 201
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
