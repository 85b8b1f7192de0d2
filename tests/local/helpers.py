"""Helpers for the local executor's tests: a small REST client and manifests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

T = TypeVar("T")
NAMESPACE = "default"
JOBS = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"


class RestApi:
    """JSON in, JSON out, against the API server's URL; raises on HTTP errors."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def get(self, path: str) -> dict[str, Any]:
        response = self.session.get(self.url + path)
        response.raise_for_status()
        return response.json()

    def exists(self, path: str) -> bool:
        return self.session.get(self.url + path).status_code == 200

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.session.post(self.url + path, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.session.patch(self.url + path, json=body,
                                      headers={"Content-Type": "application/merge-patch+json"})
        response.raise_for_status()
        return response.json()

    def delete(self, path: str, propagation_policy: str | None = None) -> None:
        options = {"propagationPolicy": propagation_policy} if propagation_policy else None
        self.session.delete(self.url + path, json=options).raise_for_status()

    def job(self, name: str) -> dict[str, Any]:
        return self.get(f"{JOBS}/{name}")

    def pods_of(self, job: str) -> list[dict[str, Any]]:
        items = self.get(f"{PODS}?labelSelector=batch.kubernetes.io/job-name={job}")["items"]
        return sorted(items, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])


def wait_until(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05,
               message: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {value!r}")
        time.sleep(interval)
        value = check()
    return value


def condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == "True":
            return cond
    return None


def job_manifest(name: str, code: str, *, env: list[dict] | None = None, **spec: Any) -> dict:
    """A Job running `python -c CODE` in one container named `main`."""
    container: dict[str, Any] = {"name": "main", "image": "python:3.11", "command": ["python", "-c", code]}
    if env:
        container["env"] = env
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                                "terminationGracePeriodSeconds": 5}
    pod_spec.update(spec.pop("pod", {}))
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}, **spec},
    }
