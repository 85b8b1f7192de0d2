"""Injected faults look as kube-apiserver's do: code, Status body, reason, headers.

Shapes from k8s.io/apimachinery/pkg/api/errors (NewInternalError, NewServiceUnavailable,
NewConflict, NewTimeoutError, NewResourceExpired) and k8s.io/apiserver's API Priority and
Fairness filter, whose 429 is Go's `http.Error` text with a Retry-After header. Watch
semantics: https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
(410 Gone on an expired resourceVersion, bookmarks with allowWatchBookmarks).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
from emulator_helpers import RawApi
from kubetune.emulator import EmulatorThread
from kubetune.emulator.faults import FaultInjector, FaultSpec, FaultSpecError

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def faults(cluster: EmulatorThread, spec: str) -> FaultInjector:
    injector = cluster.call(lambda emulator: emulator.set_faults(spec))
    assert injector is not None
    return injector


def counts(cluster: EmulatorThread) -> dict[str, int]:
    return cluster.call(lambda emulator: dict(emulator.faults.injected))


def test_spec_parses_and_bad_items_name_what_must_hold() -> None:
    spec = FaultSpec.parse("rate=0.2,kinds=429+cut,latency=30,retry-after=3,bookmarks=0.5,"
                           "agents=kopf+kubetune,seed=7")
    assert spec == FaultSpec(rate=0.2, kinds=("429", "cut"), latency_ms=30, retry_after=3,
                             bookmarks=0.5, agents=("kopf", "kubetune"), seed=7)
    assert FaultSpec.parse(spec.render()) == spec
    for bad, says in [("rate=2", "rate must be a number between 0 and 1"),
                      ("kinds=500+418", "kinds must be some of"),
                      ("seed=x", "seed must be a whole number"),
                      ("rate", "must be KEY=VALUE"),
                      ("speed=1", "unknown key 'speed'")]:
        with pytest.raises(FaultSpecError, match=says):
            FaultSpec.parse(bad)


def test_500_is_an_internal_error_status(cluster: EmulatorThread, http: RawApi) -> None:
    faults(cluster, "rate=1,kinds=500")
    response = http.get(CONFIGMAPS)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Internal error occurred: etcdserver: leader changed",
        "reason": "InternalError", "code": 500,
        "details": {"causes": [{"message": "etcdserver: leader changed"}]},
    }
    assert counts(cluster) == {"500": 1}


def test_503_is_a_service_unavailable_status(cluster: EmulatorThread, http: RawApi) -> None:
    faults(cluster, "rate=1,kinds=503")
    response = http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    assert response.status_code == 503
    body = response.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "ServiceUnavailable", 503)
    cluster.call(lambda emulator: emulator.set_faults(None))
    assert http.get(f"{CONFIGMAPS}/a").status_code == 404  # refused before storage


def test_429_is_plain_text_with_retry_after_as_priority_and_fairness_answers(
        cluster: EmulatorThread, http: RawApi) -> None:
    faults(cluster, "rate=1,kinds=429,retry-after=4")
    response = http.get(CONFIGMAPS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "4"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "Too many requests, please try again later.\n"


def test_409_conflicts_only_updates(cluster: EmulatorThread, http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    faults(cluster, "rate=1,kinds=409")
    assert http.get(f"{CONFIGMAPS}/a").status_code == 200  # reads never conflict
    assert http.post(CONFIGMAPS, {"metadata": {"name": "b"}}).status_code == 201
    response = http.patch(f"{CONFIGMAPS}/a", {"data": {"k": "v"}})
    assert response.status_code == 409
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Operation cannot be fulfilled on configmaps "a": the object has been '
                   "modified; please apply your changes to the latest version and try again",
        "reason": "Conflict", "code": 409, "details": {"name": "a", "kind": "configmaps"},
    }
    assert http.get(f"{CONFIGMAPS}/a").json().get("data") is None  # not applied
    assert counts(cluster) == {"409": 1}


def test_504_commits_the_write_and_loses_the_reply(cluster: EmulatorThread, http: RawApi) -> None:
    faults(cluster, "rate=1,kinds=504")
    response = http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    assert response.status_code == 504
    body = response.json()
    assert (body["reason"], body["code"]) == ("Timeout", 504)
    assert body["message"].startswith("Timeout: request did not complete")
    cluster.call(lambda emulator: emulator.set_faults(None))
    assert http.get(f"{CONFIGMAPS}/a").status_code == 200  # it was created all the same
    assert http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()["reason"] == "AlreadyExists"


def _stream(http: RawApi, **params: str) -> requests.Response:
    response = http.session.get(http.base_url + CONFIGMAPS, params={"watch": "true", **params},
                                stream=True, timeout=10)
    assert response.status_code == 200
    return response


def test_cut_drops_a_watch_mid_stream(cluster: EmulatorThread, http: RawApi) -> None:
    for i in range(30):
        http.post(CONFIGMAPS, {"metadata": {"name": f"cm-{i}"}})
    faults(cluster, "rate=1,kinds=cut")
    received: list[dict[str, Any]] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in _stream(http, timeoutSeconds="30").iter_lines():
            received.append(json.loads(line))
    assert 1 <= len(received) <= 20  # cut after a few of the 30 initial events, not at the end
    assert counts(cluster) == {"cut": 1}


def test_cut_also_drops_a_quiet_watch(cluster: EmulatorThread, http: RawApi) -> None:
    faults(cluster, "rate=1,kinds=cut")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        list(_stream(http, timeoutSeconds="30").iter_lines())


def test_gone_answers_a_resume_with_410_expired_and_leaves_fresh_watches_alone(
        cluster: EmulatorThread, http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    version = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
    faults(cluster, "rate=1,kinds=gone")
    lines = [json.loads(line) for line in
             _stream(http, resourceVersion=version, timeoutSeconds="1").iter_lines()]
    assert lines == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {version} ({version})",
        "reason": "Expired", "code": 410}}]
    fresh = [json.loads(line) for line in _stream(http, timeoutSeconds="0.2").iter_lines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in fresh] == [("ADDED", "a")]


def test_bookmarks_carry_a_resource_version_to_resume_from(
        cluster: EmulatorThread, http: RawApi) -> None:
    faults(cluster, "bookmarks=0.1")
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    lines = [json.loads(line) for line in
             _stream(http, allowWatchBookmarks="true", timeoutSeconds="0.35").iter_lines()]
    assert lines[0]["type"] == "ADDED"
    bookmarks = [line for line in lines if line["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 2
    assert bookmarks[-1]["object"] == {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"resourceVersion": lines[0]["object"]["metadata"]["resourceVersion"]}}
    # Resuming from the bookmark misses nothing that came after it.
    http.post(CONFIGMAPS, {"metadata": {"name": "b"}})
    resumed = [json.loads(line) for line in _stream(
        http, resourceVersion=bookmarks[-1]["object"]["metadata"]["resourceVersion"],
        timeoutSeconds="0.1").iter_lines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in resumed] == [("ADDED", "b")]
    # Without allowWatchBookmarks, none.
    plain = [json.loads(line) for line in _stream(http, timeoutSeconds="0.3").iter_lines()]
    assert {line["type"] for line in plain} == {"ADDED"}


def test_bookmark_waits_for_pending_changes(cluster: EmulatorThread, http: RawApi) -> None:
    """A bookmark never runs ahead of changes not yet sent on the stream."""
    faults(cluster, "bookmarks=0.05")
    stop = threading.Event()

    def churn() -> None:
        for i in range(40):
            if stop.is_set():
                return
            http.post(CONFIGMAPS, {"metadata": {"name": f"c-{i}"}})

    thread = threading.Thread(target=churn)
    thread.start()
    lines = [json.loads(line) for line in
             _stream(http, allowWatchBookmarks="true", timeoutSeconds="0.8").iter_lines()]
    stop.set()
    thread.join()
    newest = 0
    for line in lines:
        version = int(line["object"]["metadata"]["resourceVersion"])
        if line["type"] == "BOOKMARK":
            newest = max(newest, version)
        else:
            assert version > newest, "an event arrived after a bookmark that claimed it"


def test_decisions_replay_with_the_seed_whatever_the_interleaving() -> None:
    def run(seed: int, order: list[str]) -> dict[str, list[str | None]]:
        injector = FaultInjector(FaultSpec(rate=0.5, seed=seed))
        seen: dict[str, list[str | None]] = {}
        for path in order:
            fault = injector.decide("PATCH", path, "kubetune-operator/0.1", watch=False,
                                    resuming=False)
            seen.setdefault(path, []).append(fault.kind if fault else None)
        return seen

    order = [f"/api/v1/namespaces/a/configmaps/{i % 5}" for i in range(100)]
    assert run(3, order) == run(3, list(reversed(order)))
    assert run(3, order) != run(4, order)
    kinds = {k for ks in run(3, order).values() for k in ks}
    assert kinds == {None, "500", "503", "429", "409", "504"}  # no watch faults on a PATCH


def test_agents_limit_faults_to_the_named_clients_and_latency_is_bounded() -> None:
    injector = FaultInjector(FaultSpec(rate=1, agents=("kopf",), latency_ms=40))
    assert injector.decide("GET", "/api/v1/pods", "kubectl/v1.32.0", watch=False,
                           resuming=False) is None
    faults_seen = [injector.decide("GET", "/api/v1/pods", "kopf/1.45.2", watch=False,
                                   resuming=False) for _ in range(50)]
    assert all(f is not None and f.kind in ("500", "503", "429") for f in faults_seen)
    assert all(0 <= f.delay <= 0.04 for f in faults_seen if f)
    assert len({f.delay for f in faults_seen if f}) > 1
    assert injector.requests == {"kubectl": 1, "kopf": 50}


def test_bookmarks_due_while_changes_wait_never_stall_the_stream(
        cluster: EmulatorThread, http: RawApi) -> None:
    """With a bookmark always due, waiting changes are still sent at once, not at the
    stream's timeout (a read timeout of 10 s on a 60 s watch catches a stall)."""
    faults(cluster, "bookmarks=0.001")
    response = http.session.get(http.base_url + CONFIGMAPS, stream=True, timeout=(5, 10), params={
        "watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "60"})
    thread = threading.Thread(target=lambda: [
        http.post(CONFIGMAPS, {"metadata": {"name": f"s-{i}"}}) for i in range(100)])
    thread.start()
    added = 0
    for line in response.iter_lines():
        added += json.loads(line)["type"] == "ADDED"
        if added == 100:
            break
    response.close()
    thread.join()
    assert added == 100
