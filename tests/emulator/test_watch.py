"""Watch streams: ADDED/MODIFIED/DELETED with the object, resourceVersion and selectors."""

from __future__ import annotations

import json
import threading
from typing import Any

import kubernetes
import requests
from emulator_helpers import RawApi
from kubetune.emulator import ApiServerEmulator, EmulatorThread

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def watch_lines(http: RawApi, path: str, **params: str) -> list[dict[str, Any]]:
    """Collect a watch that the server ends through timeoutSeconds."""
    response = http.session.get(http.base_url + path, params={"watch": "true", **params},
                                stream=True, timeout=10)
    assert response.status_code == 200
    return [json.loads(line) for line in response.iter_lines() if line]


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["type"], event["object"]["metadata"]["name"]) for event in events]


def test_watch_streams_added_modified_deleted(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "existing"}})

    def changes() -> None:
        http.post(CONFIGMAPS, {"metadata": {"name": "new"}})
        http.patch(f"{CONFIGMAPS}/new", {"data": {"k": "v"}})
        http.delete(f"{CONFIGMAPS}/new")

    timer = threading.Timer(0.3, changes)
    timer.start()
    events = watch_lines(http, CONFIGMAPS, timeoutSeconds="1")
    timer.join()
    assert summary(events) == [("ADDED", "existing"), ("ADDED", "new"),
                               ("MODIFIED", "new"), ("DELETED", "new")]
    assert events[2]["object"]["data"] == {"k": "v"}
    assert events[2]["object"]["kind"] == "ConfigMap"


def test_watch_from_a_resource_version_replays_later_changes_only(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "before"}})
    version = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
    http.post(CONFIGMAPS, {"metadata": {"name": "after"}})
    http.post("/api/v1/namespaces/default/secrets", {"metadata": {"name": "unrelated"}})
    events = watch_lines(http, CONFIGMAPS, resourceVersion=version, timeoutSeconds="0.2")
    assert summary(events) == [("ADDED", "after")]


def test_namespaced_watch_sees_only_its_namespace_and_cluster_watch_sees_all(
        http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "here"}})
    http.create_namespace("other")
    http.post("/api/v1/namespaces/other/configmaps", {"metadata": {"name": "there"}})
    assert summary(watch_lines(http, CONFIGMAPS, timeoutSeconds="0.1")) == [("ADDED", "here")]
    everywhere = watch_lines(http, "/api/v1/configmaps", timeoutSeconds="0.1")
    assert sorted(summary(everywhere)) == [("ADDED", "here"), ("ADDED", "there")]


def test_watch_with_label_selector_reports_objects_entering_and_leaving(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "c"}})
    version = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
    http.patch(f"{CONFIGMAPS}/c", {"metadata": {"labels": {"app": "x"}}})
    http.patch(f"{CONFIGMAPS}/c", {"data": {"k": "v"}})
    http.patch(f"{CONFIGMAPS}/c", {"metadata": {"labels": {"app": None}}})
    events = watch_lines(http, CONFIGMAPS, resourceVersion=version, labelSelector="app=x",
                         timeoutSeconds="0.2")
    assert summary(events) == [("ADDED", "c"), ("MODIFIED", "c"), ("DELETED", "c")]


def test_watch_with_field_selector_on_name(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    http.post(CONFIGMAPS, {"metadata": {"name": "b"}})
    events = watch_lines(http, CONFIGMAPS, fieldSelector="metadata.name=b", timeoutSeconds="0.1")
    assert summary(events) == [("ADDED", "b")]


def test_watch_from_a_forgotten_resource_version_is_410_gone() -> None:
    emulator = ApiServerEmulator(watch_history_size=2)
    with EmulatorThread(emulator) as cluster, requests.Session() as session:
        http = RawApi(cluster.url, session)
        for name in "abcd":
            http.post(CONFIGMAPS, {"metadata": {"name": name}})
        events = watch_lines(http, CONFIGMAPS, resourceVersion="1", timeoutSeconds="0.1")
    assert [event["type"] for event in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_kubernetes_client_watch(core: kubernetes.client.CoreV1Api, http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    stream = kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default",
                                             timeout_seconds=1)
    event = next(stream)
    assert event["type"] == "ADDED"
    assert event["object"].metadata.name == "a"
    http.delete(f"{CONFIGMAPS}/a")
    event = next(stream)
    assert (event["type"], event["object"].metadata.name) == ("DELETED", "a")
