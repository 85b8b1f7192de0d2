"""404, 409 and PUT, with error bodies that are real `Status` objects."""

from __future__ import annotations

import kubernetes
import pytest
from emulator_helpers import RawApi

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def test_create_of_an_existing_name_is_409_already_exists(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    response = http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    assert response.status_code == 409
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "a" already exists', "reason": "AlreadyExists", "code": 409,
        "details": {"name": "a", "kind": "configmaps"},
    }


def test_missing_object_is_404_not_found(http: RawApi) -> None:
    response = http.get(f"{CONFIGMAPS}/nope")
    assert response.status_code == 404
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotFound", 404)
    assert status["message"] == 'configmaps "nope" not found'
    assert http.delete(f"{CONFIGMAPS}/nope").status_code == 404
    assert http.patch(f"{CONFIGMAPS}/nope", {"data": {}}).status_code == 404


def test_unknown_resource_is_404(http: RawApi) -> None:
    response = http.get("/apis/example.com/v1/namespaces/default/gadgets")
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


def test_client_raises_api_exception_with_the_status(core: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(kubernetes.client.ApiException) as raised:
        core.read_namespaced_secret("nope", "default")
    assert raised.value.status == 404


def test_put_replaces_the_whole_object(http: RawApi) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a", "labels": {"x": "1"}},
                                     "data": {"old": "1"}}).json()
    replacement = {"metadata": {"name": "a", "resourceVersion": created["metadata"]["resourceVersion"]},
                   "data": {"new": "2"}}
    replaced = http.put(f"{CONFIGMAPS}/a", replacement)
    assert replaced.status_code == 200
    assert replaced.json()["data"] == {"new": "2"}
    assert "labels" not in replaced.json()["metadata"]
    assert replaced.json()["metadata"]["uid"] == created["metadata"]["uid"]


def test_put_with_a_stale_resource_version_is_409_conflict(http: RawApi) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    stale = created["metadata"]["resourceVersion"]
    http.patch(f"{CONFIGMAPS}/a", {"data": {"k": "v"}})
    response = http.put(f"{CONFIGMAPS}/a", {"metadata": {"name": "a", "resourceVersion": stale}})
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    assert "the object has been modified" in response.json()["message"]


def test_patch_with_a_stale_resource_version_is_409_conflict(http: RawApi) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    stale = created["metadata"]["resourceVersion"]
    http.patch(f"{CONFIGMAPS}/a", {"data": {"k": "v"}})
    response = http.patch(f"{CONFIGMAPS}/a", {"metadata": {"resourceVersion": stale},
                                              "data": {"k": "w"}})
    assert response.status_code == 409
    assert http.get(f"{CONFIGMAPS}/a").json()["data"] == {"k": "v"}


def test_put_with_another_name_is_400(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    assert http.put(f"{CONFIGMAPS}/a", {"metadata": {"name": "b"}}).status_code == 400


def test_json_patch_and_strategic_merge_patch(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    json_patch = [{"op": "add", "path": "/data/j", "value": "1"}]
    patched = http.patch(f"{CONFIGMAPS}/a", json_patch, "application/json-patch+json")
    assert patched.json()["data"] == {"k": "v", "j": "1"}
    strategic = {"data": {"k": None}, "$setElementOrder/x": []}
    patched = http.patch(f"{CONFIGMAPS}/a", strategic, "application/strategic-merge-patch+json")
    assert patched.json()["data"] == {"j": "1"}
    assert "$setElementOrder/x" not in patched.json()


def test_client_replace_round_trip(core: kubernetes.client.CoreV1Api) -> None:
    body = kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="a"),
                                         data={"k": "v"})
    created = core.create_namespaced_config_map("default", body)
    created.data = {"k": "w"}
    replaced = core.replace_namespaced_config_map("a", "default", created)
    assert replaced.data == {"k": "w"}
    created.data = {"k": "stale"}
    with pytest.raises(kubernetes.client.ApiException) as raised:
        core.replace_namespaced_config_map("a", "default", created)
    assert raised.value.status == 409
