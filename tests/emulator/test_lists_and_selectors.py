"""Lists carry kind, apiVersion and resourceVersion; label and field selectors filter them."""

from __future__ import annotations

import kubernetes
import pytest
from emulator_helpers import RawApi

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def labelled(http: RawApi) -> RawApi:
    for name, labels in [("a", {"app": "x", "tier": "web"}), ("b", {"app": "y"}), ("c", {})]:
        http.post(CONFIGMAPS, {"metadata": {"name": name, "labels": labels}})
    http.create_namespace("other")
    http.post("/api/v1/namespaces/other/configmaps", {"metadata": {"name": "d",
                                                                   "labels": {"app": "x"}}})
    return http


def names(response) -> list[str]:
    return [item["metadata"]["name"] for item in response.json()["items"]]


def test_list_has_kind_api_version_and_resource_version(labelled: RawApi) -> None:
    listing = labelled.get(CONFIGMAPS).json()
    assert listing["kind"] == "ConfigMapList" and listing["apiVersion"] == "v1"
    assert listing["metadata"]["resourceVersion"].isdigit()
    jobs = labelled.get("/apis/batch/v1/jobs").json()
    assert (jobs["kind"], jobs["apiVersion"]) == ("JobList", "batch/v1")


def test_namespaced_and_all_namespace_lists(labelled: RawApi) -> None:
    assert names(labelled.get(CONFIGMAPS)) == ["a", "b", "c"]
    assert names(labelled.get("/api/v1/configmaps")) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=x", ["a"]),
    ("app==x", ["a"]),
    ("app!=x", ["b", "c"]),
    ("app in (x,y)", ["a", "b"]),
    ("app notin (x)", ["b", "c"]),
    ("app", ["a", "b"]),
    ("!app", ["c"]),
    ("app=x,tier=web", ["a"]),
    ("app in (x, y),!tier", ["b"]),
])
def test_label_selectors(labelled: RawApi, selector: str, expected: list[str]) -> None:
    assert names(labelled.get(CONFIGMAPS, labelSelector=selector)) == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("metadata.name=b", ["b"]),
    ("metadata.name!=b", ["a", "c", "d"]),
    ("metadata.namespace=other", ["d"]),
    ("metadata.namespace==default,metadata.name=a", ["a"]),
])
def test_field_selectors(labelled: RawApi, selector: str, expected: list[str]) -> None:
    assert names(labelled.get("/api/v1/configmaps", fieldSelector=selector)) == expected


def test_malformed_selector_is_400(labelled: RawApi) -> None:
    assert labelled.get(CONFIGMAPS, labelSelector="app in x").status_code == 400


def test_client_list_with_selector(core: kubernetes.client.CoreV1Api, labelled: RawApi) -> None:
    listing = core.list_config_map_for_all_namespaces(label_selector="app=x")
    assert sorted(item.metadata.name for item in listing.items) == ["a", "d"]
    assert listing.metadata.resource_version.isdigit()
