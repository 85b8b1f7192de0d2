"""System metadata: what kube-apiserver stamps on every object, checked over HTTP."""

from __future__ import annotations

import re
import uuid

import kubernetes
from emulator_helpers import RawApi

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def test_create_stamps_uid_resource_version_generation_and_timestamp(http: RawApi) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a", "uid": "forged"}}).json()
    meta = created["metadata"]
    assert uuid.UUID(meta["uid"]) and meta["uid"] != "forged"
    assert isinstance(meta["resourceVersion"], str) and meta["resourceVersion"].isdigit()
    assert meta["generation"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert created["apiVersion"] == "v1" and created["kind"] == "ConfigMap"


def test_resource_version_is_one_counter_across_resources(http: RawApi) -> None:
    first = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    second = http.post("/api/v1/namespaces/default/secrets", {"metadata": {"name": "b"}}).json()
    third = http.post(CONFIGMAPS, {"metadata": {"name": "c"}}).json()
    versions = [int(obj["metadata"]["resourceVersion"]) for obj in (first, second, third)]
    assert versions == sorted(set(versions))


def test_namespace_comes_from_the_url(core: kubernetes.client.CoreV1Api) -> None:
    body = kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="a"))
    core.create_namespace(kubernetes.client.V1Namespace(
        metadata=kubernetes.client.V1ObjectMeta(name="team-a")))
    created = core.create_namespaced_config_map("team-a", body)
    assert created.metadata.namespace == "team-a"
    assert core.read_namespaced_config_map("a", "team-a").metadata.namespace == "team-a"


def test_namespace_in_body_must_match_the_url(http: RawApi) -> None:
    response = http.post(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "other"}})
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


def test_generate_name_gets_a_random_suffix(http: RawApi) -> None:
    names = {
        http.post(CONFIGMAPS, {"metadata": {"generateName": "event-"}}).json()["metadata"]["name"]
        for _ in range(50)
    }
    assert len(names) == 50
    assert all(re.fullmatch(r"event-[a-z0-9]{5}", name) for name in names)


def test_missing_name_and_generate_name_is_invalid(http: RawApi) -> None:
    response = http.post(CONFIGMAPS, {"metadata": {}})
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"


def test_generation_bumps_only_when_content_other_than_metadata_and_status_changes(
        widgets: RawApi) -> None:
    path = "/apis/example.com/v1/namespaces/default/widgets"
    widgets.post(path, {"apiVersion": "example.com/v1", "kind": "Widget",
                        "metadata": {"name": "w"}, "spec": {"size": 1}})
    labelled = widgets.patch(f"{path}/w", {"metadata": {"labels": {"a": "b"}}}).json()
    assert labelled["metadata"]["generation"] == 1
    with_status = widgets.patch(f"{path}/w/status", {"status": {"phase": "Running"}}).json()
    assert with_status["metadata"]["generation"] == 1
    resized = widgets.patch(f"{path}/w", {"spec": {"size": 2}}).json()
    assert resized["metadata"]["generation"] == 2
    assert int(resized["metadata"]["resourceVersion"]) > int(labelled["metadata"]["resourceVersion"])


def test_a_no_op_patch_keeps_the_resource_version(http: RawApi) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"k": "v"}}).json()
    patched = http.patch(f"{CONFIGMAPS}/a", {"data": {"k": "v"}}).json()
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_system_fields_cannot_be_overwritten_by_updates(http: RawApi) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    forged = {"metadata": {"uid": "x", "creationTimestamp": "2000-01-01T00:00:00Z",
                           "generation": 99}}
    patched = http.patch(f"{CONFIGMAPS}/a", forged).json()
    for field in ("uid", "creationTimestamp", "generation"):
        assert patched["metadata"][field] == created["metadata"][field]
