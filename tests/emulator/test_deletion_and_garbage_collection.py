"""Finalizers hold objects with deletionTimestamp; deleting an owner deletes its dependents."""

from __future__ import annotations

from typing import Any

from emulator_helpers import RawApi

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS = "/api/v1/namespaces/default/pods"


def owned_by(*owners: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
             "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
            for owner in owners]


def test_finalizers_keep_the_object_until_removed(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a", "finalizers": ["example.com/cleanup"]}})
    deleting = http.delete(f"{CONFIGMAPS}/a")
    assert deleting.status_code == 200
    assert deleting.json()["metadata"]["deletionTimestamp"]
    still_there = http.get(f"{CONFIGMAPS}/a")
    assert still_there.status_code == 200
    assert still_there.json()["metadata"]["deletionTimestamp"]
    http.patch(f"{CONFIGMAPS}/a", {"metadata": {"finalizers": None}})
    assert http.get(f"{CONFIGMAPS}/a").status_code == 404


def test_deleting_an_owner_deletes_dependents_recursively(http: RawApi) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    job = http.post(JOBS, {"metadata": {"name": "job", "ownerReferences": owned_by(owner)},
                           "spec": {}}).json()
    http.post(PODS, {"metadata": {"name": "pod", "ownerReferences": owned_by(job)}})
    http.post(CONFIGMAPS, {"metadata": {"name": "unrelated"}})
    http.delete(f"{CONFIGMAPS}/owner")
    assert http.get(f"{JOBS}/job").status_code == 404
    assert http.get(f"{PODS}/pod").status_code == 404
    assert http.get(f"{CONFIGMAPS}/unrelated").status_code == 200


def test_dependent_with_a_finalizer_is_marked_not_removed(http: RawApi) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "finalizers": ["x/y"],
                                        "ownerReferences": owned_by(owner)}})
    http.delete(f"{CONFIGMAPS}/owner")
    dependent = http.get(f"{CONFIGMAPS}/dep").json()
    assert dependent["metadata"]["deletionTimestamp"]


def test_dependent_with_another_live_owner_survives(http: RawApi) -> None:
    first = http.post(CONFIGMAPS, {"metadata": {"name": "first"}}).json()
    second = http.post(CONFIGMAPS, {"metadata": {"name": "second"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(first, second)}})
    http.delete(f"{CONFIGMAPS}/first")
    refs = http.get(f"{CONFIGMAPS}/dep").json()["metadata"]["ownerReferences"]
    assert [ref["name"] for ref in refs] == ["second"]


def test_orphan_propagation_keeps_dependents(http: RawApi) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(owner)}})
    http.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Orphan"})
    dependent = http.get(f"{CONFIGMAPS}/dep").json()
    assert "ownerReferences" not in dependent["metadata"]


def test_owner_released_by_finalizer_removal_collects_dependents(http: RawApi) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner", "finalizers": ["x/y"]}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(owner)}})
    http.delete(f"{CONFIGMAPS}/owner")
    assert http.get(f"{CONFIGMAPS}/dep").status_code == 200
    http.patch(f"{CONFIGMAPS}/owner", {"metadata": {"finalizers": []}})
    assert http.get(f"{CONFIGMAPS}/dep").status_code == 404


def test_delete_preconditions(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    response = http.delete(f"{CONFIGMAPS}/a", {"preconditions": {"uid": "other"}})
    assert response.status_code == 409


def test_delete_collection_with_selector(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a", "labels": {"app": "x"}}})
    http.post(CONFIGMAPS, {"metadata": {"name": "b"}})
    response = http.session.delete(http.base_url + CONFIGMAPS,
                                   params={"labelSelector": "app=x"}, timeout=10)
    assert response.status_code == 200
    assert [item["metadata"]["name"] for item in http.get(CONFIGMAPS).json()["items"]] == ["b"]
