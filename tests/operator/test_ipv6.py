"""IPv6 and dual-stack pods: the operator reaches the trainer's progress endpoint.

On an IPv6 (or IPv6-primary dual-stack) cluster a pod's status.podIP is an IPv6 address
(https://kubernetes.io/docs/concepts/services-networking/dual-stack/), and a URL must put it
in brackets (RFC 3986, section 3.2.2). The loopback ::1 stands in for the pod's address.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubetune.operator.observe import pod_ip, progress_url

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
