"""Test helpers: a user's view of the cluster, and a stand-in for Job controller and kubelet."""

from __future__ import annotations

import collections
import copy
import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.exceptions import ApiException
from kubetune.operator.kube import Kube

T = TypeVar("T")
NAMESPACE = "team-a"
GROUP, VERSION = "kubetune.io", "v1alpha1"

FINETUNE_JOB: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "FinetuneJob",
    "metadata": {"name": "router", "namespace": NAMESPACE},
    "spec": {
        "model": {"uri": "hf://sentence-transformers/all-MiniLM-L6-v2",
                  "task": "sequence-classification"},
        "dataset": {"uri": "pvc://data/feedback/train.jsonl", "validation": {"splitRatio": 0.1},
                    "secretRef": {"name": "s3-creds"}},
        "hyperparameters": {"epochs": 1, "batchSize": 4},
        "resources": {"gpus": 0},
        "output": {"uri": "pvc://models/router"},
    },
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(check: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll until `check()` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (KeyError, TypeError, IndexError, ApiException):
            last = None
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_),
                None)


class CountingKube(Kube):
    """The operator's own API client, counting the requests it sends by (method, path), so
    tests can show what the operator did (and did not) write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: collections.Counter[tuple[str, str]] = collections.Counter()

    async def _request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        self.sent[(method, path.split("?")[0])] += 1
        return await super()._request(method, path, *args, **kwargs)


class ClusterApi:
    """What a user (and the tests' stand-in controllers) do through the API."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.batch = kubernetes.client.BatchV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)

    # --- the user's side ---
    def create_namespace(self, name: str = NAMESPACE) -> None:
        """A real cluster answers 404 for objects in a namespace nobody created."""
        self.core.create_namespace({"metadata": {"name": name}})

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        plural = doc["kind"].lower() + "s"
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, doc["metadata"].get("namespace", NAMESPACE), plural, doc)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, kind.lower() + "s", name)

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, kind.lower() + "s", name, {"spec": spec})

    def delete(self, kind: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE,
                                                    kind.lower() + "s", name)

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return self.get(kind, name).get("status") or {}

    def wait_status(self, kind: str, name: str, check: Callable[[dict], Any],
                    timeout: float = 20.0) -> dict[str, Any]:
        def ok() -> dict[str, Any] | None:
            status = self.status(kind, name)
            return status if check(status) else None
        return wait_for(ok, timeout, f"{kind} {name} status")

    def wait_condition(self, kind: str, name: str, type_: str, status: str,
                       reason: str | None = None, timeout: float = 20.0) -> dict[str, Any]:
        def ok(st: dict) -> bool:
            cond = condition({"status": st}, type_)
            return bool(cond and cond["status"] == status and (reason is None or cond["reason"] == reason))
        return self.wait_status(kind, name, ok, timeout)

    def job(self, name: str) -> dict[str, Any]:
        return self.batch.read_namespaced_job(name, NAMESPACE).to_dict()

    def raw_job(self, name: str) -> dict[str, Any]:
        response = self.batch.read_namespaced_job(name, NAMESPACE, _preload_content=False)
        return json.loads(response.data)

    def config_map(self, name: str) -> dict[str, Any]:
        return self.core.read_namespaced_config_map(name, NAMESPACE).to_dict()

    def jobs(self) -> list[str]:
        return [j.metadata.name for j in self.batch.list_namespaced_job(NAMESPACE).items]

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_event(NAMESPACE).items
        return [{"reason": e.reason, "type": e.type, "message": e.message} for e in items
                if e.involved_object and e.involved_object.name == name]

    # --- the Job controller's and kubelet's side ---
    def set_job_status(self, name: str, status: dict[str, Any]) -> None:
        self.batch.patch_namespaced_job_status(name, NAMESPACE, {"status": status})

    def start_pod(self, job_name: str, *, ip: str = "127.0.0.1", index: int = 0,
                  suffix: str = "a") -> str:
        """A pod of the Job, running (what the Job controller and kubelet would do)."""
        job = self.raw_job(job_name)
        template = copy.deepcopy(job["spec"]["template"])
        pod_name = f"{job_name}-{index}-{suffix}"
        labels = {**template["metadata"]["labels"], "batch.kubernetes.io/job-name": job_name,
                  "batch.kubernetes.io/job-completion-index": str(index)}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": NAMESPACE, "labels": labels,
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                                 "name": job_name, "uid": job["metadata"]["uid"],
                                                 "controller": True}]},
               "spec": template["spec"]}
        self.core.create_namespaced_pod(NAMESPACE, pod)
        self.set_pod_status(pod_name, {"phase": "Running", "podIP": ip, "containerStatuses": [{
            "name": "trainer", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
            "state": {"running": {"startedAt": now()}}}]})
        self.set_job_status(job_name, {"active": 1, "startTime": now()})
        return pod_name

    def set_pod_status(self, pod_name: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(pod_name, NAMESPACE, {"status": status})

    def end_pod(self, pod_name: str, *, exit_code: int, message: str | dict = "",
                reason: str | None = None) -> None:
        text = json.dumps(message) if isinstance(message, dict) else message
        self.set_pod_status(pod_name, {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [{"name": "trainer", "ready": False, "restartCount": 0,
                                   "image": "x", "imageID": "", "state": {"terminated": {
                                       "exitCode": exit_code, "message": text,
                                       "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                                       "startedAt": now(), "finishedAt": now()}}}]})

    def finish_job(self, job_name: str, *, type_: str = "Complete", reason: str = "",
                   succeeded: int = 1, failed: int = 0) -> None:
        self.set_job_status(job_name, {
            "active": 0, "succeeded": succeeded, "failed": failed, "completionTime": now(),
            "conditions": [{"type": type_, "status": "True", "reason": reason,
                            "lastTransitionTime": now(), "message": ""}]})


class ProgressServer:
    """Plays a trainer's GET /progress on 127.0.0.1 (or `host`, e.g. ::1)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.report: dict[str, Any] | None = None
        self.requests = 0
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server_self.requests += 1
                if self.path != "/progress" or server_self.report is None:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(server_self.report).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server_class = _V6Server if ":" in host else ThreadingHTTPServer
        self.server = server_class((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ProgressServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
