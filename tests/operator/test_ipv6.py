"""IPv6 and dual-stack pods: the operator reaches the trainer's progress endpoint.

On an IPv6 (or IPv6-primary dual-stack) cluster a pod's status.podIP is an IPv6 address
(https://kubernetes.io/docs/concepts/services-networking/dual-stack/), and a URL must put it
in brackets (RFC 3986, section 3.2.2). The loopback ::1 stands in for the pod's address.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from kubetune.operator.kube import Kube
from kubetune.operator.observe import pod_ip, progress_url
from kubetune.operator.runner import OperatorThread
from kubetune.operator.settings import Settings

from .cluster import FINETUNE_JOB, ProgressServer, wait_for


@pytest.fixture
def progress_server() -> Iterator[ProgressServer]:
    with ProgressServer(host="::1") as server:
        yield server


def test_progress_of_a_pod_with_an_ipv6_address(api, operator, progress_server):
    api.create(FINETUNE_JOB)
    wait_for(lambda: api.raw_job("router-train"))
    api.start_pod("router-train", ip="::1")
    api.wait_condition("FinetuneJob", "router", "Running", "True", "PodsRunning")
    progress_server.report = {"step": 5, "totalSteps": 20}
    status = api.wait_status("FinetuneJob", "router",
                             lambda s: (s.get("progress") or {}).get("step") == 5)
    assert status["progress"]["percent"] == 25


def test_trainer_pods_get_all_their_ips(api, operator):
    """status.podIPs through the downward API: the trainer serves every family."""
    api.create(FINETUNE_JOB)
    job = wait_for(lambda: api.raw_job("router-train"))
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}} in env


def test_pod_ip_and_url_for_both_families():
    dual = {"status": {"podIP": "fd00::7", "podIPs": [{"ip": "fd00::7"}, {"ip": "10.0.0.7"}]}}
    assert pod_ip(dual) == "fd00::7"
    assert pod_ip({"status": {"podIPs": [{"ip": "10.0.0.7"}]}}) == "10.0.0.7"
    assert progress_url("fd00::7", 8000) == "http://[fd00::7]:8000/progress"
    assert progress_url("10.0.0.7", 8000) == "http://10.0.0.7:8000/progress"


def _free_port() -> int:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        return probe.getsockname()[1]


def test_the_operators_probe_and_metrics_answer_on_an_ipv6_pod(monkeypatch, operator_kubeconfig):
    """The kubelet probes the operator pod's IP (IPv6 on an IPv6 cluster): its health and
    metrics servers listen in the pod IP's family (the chart passes POD_IP)."""
    monkeypatch.setenv("POD_IP", "::1")
    health, metrics = _free_port(), _free_port()
    settings = Settings(metrics_port=metrics, health_port=health, trainer_image="t:1")
    with OperatorThread(settings, memo={"kube": Kube.connect(str(operator_kubeconfig))}):
        for port, path in ((health, "/healthz"), (metrics, "/metrics")):
            body = wait_for(lambda p=port, q=path: _get(f"http://[::1]:{p}{q}"),
                            what=f"{path} on [::1]")
            assert body


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.read() or b"ok"
    except (urllib.error.URLError, OSError):
        return None
