"""A tiny real kopf operator against the emulator: watch, create a child, patch status.

It is the proof that kopf behaves here as against kube-apiserver, also under a burst of 200
objects (stock kmock needed 55 s for those; see notes.md and benchmarks/operator_scale.py).
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import kopf
import kopf.testing
import pytest
from emulator_helpers import RawApi

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def fast_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    settings.posting.enabled = False
    settings.execution.default_backoff = 0.1
    settings.networking.error_backoffs = [0.1]
    settings.queueing.error_delays = [0.1]
    settings.persistence.consistency_timeout = 1
    settings.background.instant_exit_timeout = 0.1
    settings.watching.server_timeout = 5
    return settings


def child_creating_operator(api_url: str) -> kopf.OperatorRegistry:
    """on.create: a ConfigMap owned by the Widget, then status.child with its name."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create("example.com", "v1", "widgets", registry=registry)
    async def create_child(body: kopf.Body, name: str, namespace: str, patch: kopf.Patch,
                           logger: logging.Logger, **_: Any) -> None:
        child = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"{name}-child"}, "data": {"size": str(body.spec["size"])}}
        kopf.adopt(child, owner=body)
        url = f"{api_url}/api/v1/namespaces/{namespace}/configmaps"
        async with aiohttp.ClientSession() as session, session.post(url, json=child) as response:
            assert response.status in (201, 409), await response.text()
        patch.status["child"] = f"{name}-child"

    return registry


@pytest.fixture
def operator(widgets: RawApi, kubeconfig: pathlib.Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[kopf.testing.KopfRunner]:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    registry = child_creating_operator(widgets.base_url)
    runner = kopf.testing.KopfRunner(["run", "--standalone", "--namespace=default"],
                                     registry=registry, settings=fast_settings(), timeout=60)
    with runner:
        yield runner
    assert runner.exit_code == 0, runner.output


def wait_for(condition, timeout: float = 20.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return time.monotonic() - started


def test_kopf_creates_a_child_and_patches_status(widgets: RawApi, operator) -> None:
    widgets.post(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                           "metadata": {"name": "w"}, "spec": {"size": 3}})
    wait_for(lambda: widgets.get(f"{WIDGETS}/w").json().get("status", {}).get("child"))
    child = widgets.get(f"{CONFIGMAPS}/w-child").json()
    assert child["data"] == {"size": "3"}
    owner = widgets.get(f"{WIDGETS}/w").json()
    assert child["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
    assert owner["status"]["child"] == "w-child"
    # kopf recorded the handled state; deleting the owner collects the child.
    assert "kopf.zalando.org/last-handled-configuration" in owner["metadata"]["annotations"]
    widgets.delete(f"{WIDGETS}/w")
    wait_for(lambda: widgets.get(f"{CONFIGMAPS}/w-child").status_code == 404)


def test_two_hundred_objects_through_kopf_each_get_their_child(widgets: RawApi, operator) -> None:
    # A burst like the operator's scale benchmark: nothing is lost or handled twice. How fast
    # is measured by benchmarks/operator_scale.py, not asserted here.
    count = 200
    for index in range(count):
        widgets.post(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                               "metadata": {"name": f"w{index}"}, "spec": {"size": index}})

    def all_children_exist() -> bool:
        return len(widgets.get(CONFIGMAPS).json()["items"]) >= count

    wait_for(all_children_exist, timeout=120)
    children = {c["metadata"]["name"]: c["data"]["size"]
                for c in widgets.get(CONFIGMAPS).json()["items"]}
    assert children == {f"w{i}-child": str(i) for i in range(count)}
