"""kube.py through an API server that fails: retries, back-off, Retry-After, conflicts, metrics.

The emulator injects the faults in kube-apiserver's shapes (kubetune.emulator.faults). The
back-off waits are recorded instead of slept (asyncio.sleep in kube.py is replaced), so
these tests check which waits were chosen without taking that long.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kubetune.emulator import EmulatorThread
from kubetune.operator import kube as kube_module
from kubetune.operator.kube import ApiError, Kube, RetryPolicy
from kubetune.operator.metrics import Metrics
from kubetune.operator.monotonic import forward_only

NAMESPACE = "team-a"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(kube_module.asyncio, "sleep", sleep)
    return recorded


def _kube(kubeconfig: Path, metrics: Metrics) -> Kube:
    kube = Kube.connect(str(kubeconfig))
    kube.retry = RetryPolicy(attempts=4, base_seconds=0.2, cap_seconds=10)
    kube.on_reply = metrics.record_api_reply
    return kube


async def _run(kube: Kube, coroutine):
    try:
        return await coroutine
    finally:
        await kube.aclose()


def _count(metrics: Metrics, name: str, verb: str, code: str) -> float:
    value = metrics.registry.get_sample_value(name, {"verb": verb, "code": code})
    return value or 0.0


def test_429_is_retried_no_sooner_than_retry_after_then_escalates(
        cluster: EmulatorThread, kubeconfig: Path, waits: list[float]) -> None:
    cluster.call(lambda e: e.set_faults("rate=1,kinds=429,retry-after=3,agents=kubetune"))
    metrics = Metrics()
    kube = _kube(kubeconfig, metrics)
    with pytest.raises(ApiError) as raised:
        asyncio.run(_run(kube, kube.list_managed("Job", NAMESPACE)))
    assert raised.value.status == 429
    assert "Too many requests" in str(raised.value)  # the plain-text body, read as such
    assert len(waits) == 3 and all(wait >= 3 for wait in waits)
    assert _count(metrics, "kubetune_api_errors_total", "list", "429") == 4


def test_server_errors_back_off_exponentially_with_jitter_and_succeed(
        cluster: EmulatorThread, kubeconfig: Path, waits: list[float]) -> None:
    # 50% of the operator's requests fail with 500 or 503; seed 5 makes the first 2 tries fail.
    injector = cluster.call(lambda e: e.set_faults("rate=0.5,kinds=500+503,seed=5,agents=kubetune"))
    metrics = Metrics()
    kube = _kube(kubeconfig, metrics)
    assert asyncio.run(_run(kube, kube.list_managed("Job", NAMESPACE))) == []
    failures = sum(cluster.call(lambda e: dict(e.faults.injected)).values())
    assert failures == len(waits) >= 1
    for attempt, wait in enumerate(waits):
        assert 0 <= wait <= 0.2 * 2 ** attempt
    assert injector.requests["kubetune-operator"] == len(waits) + 1
    assert _count(metrics, "kubetune_api_requests_total", "list", "200") == 1


def test_a_create_whose_reply_was_lost_is_not_made_twice(
        cluster: EmulatorThread, kubeconfig: Path, waits: list[float], api) -> None:
    """504 after the write: the retry meets AlreadyExists, and create() says 'exists'.
    (`api` creates the namespace: the API server refuses objects in a missing one.)"""
    cluster.call(lambda e: e.set_faults("rate=1,kinds=504,agents=kubetune"))
    metrics = Metrics()
    kube = _kube(kubeconfig, metrics)
    replies: list[str] = []

    def on_reply(verb: str, code: str) -> None:
        replies.append(code)
        metrics.record_api_reply(verb, code)
        cluster.call(lambda e: e.set_faults(None))  # only the first try times out

    kube.on_reply = on_reply
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "router-config", "namespace": NAMESPACE}}
    assert asyncio.run(_run(kube, kube.create(config_map))) is None  # exists already
    assert replies == ["504", "409"]
    names = cluster.call(lambda e: [o["metadata"]["name"] for o in e.store.list(("", "configmaps"))
                                    if o["metadata"]["namespace"] == NAMESPACE])
    assert names == ["router-config"]


def _job_with_status(api, status: dict) -> None:
    """A FinetuneJob `router` whose stored status is `status` (as the operator last wrote it)."""
    api.create({"apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob",
                "metadata": {"name": "router", "namespace": NAMESPACE},
                "spec": {"model": {"uri": "hf://m/x"}, "dataset": {"uri": "hf://d/y"},
                         "output": {"uri": "s3://b/o"}}})
    api.custom.patch_namespaced_custom_object_status(
        "kubetune.io", "v1alpha1", NAMESPACE, "finetunejobs", "router", {"status": status})


def test_a_status_conflict_rereads_and_never_writes_a_finished_job_backwards(
        cluster: EmulatorThread, kubeconfig: Path, waits: list[float], api) -> None:
    _job_with_status(api, {"phase": "Succeeded", "progress": {"step": 100, "totalSteps": 100}})
    cluster.call(lambda e: e.set_faults("rate=1,kinds=409,agents=kubetune"))
    metrics = Metrics()
    kube = _kube(kubeconfig, metrics)
    seen: list[dict] = []

    def guard(current: dict, patch: dict) -> dict:
        seen.append(current)
        cluster.call(lambda e: e.set_faults(None))  # the retry goes through
        return forward_only(current, patch)

    # A view older than the server's: the job still looked Running at step 60.
    stale = {"phase": "Running", "progress": {"step": 60, "totalSteps": 100}, "attempts": 1}
    stored = asyncio.run(_run(kube, kube.patch_status("FinetuneJob", NAMESPACE, "router",
                                                      stale, guard=guard)))
    assert seen[0]["phase"] == "Succeeded"  # re-read after the conflict
    status = api.status("FinetuneJob", "router")
    assert status["phase"] == "Succeeded" and status["progress"]["step"] == 100
    assert "attempts" not in status  # computed from a view before the end: dropped whole
    assert stored == status
    assert _count(metrics, "kubetune_api_errors_total", "patch", "409") == 1
    assert _count(metrics, "kubetune_api_requests_total", "get", "200") == 1


def test_a_status_conflict_reapplies_what_still_moves_forward(
        cluster: EmulatorThread, kubeconfig: Path, waits: list[float], api) -> None:
    _job_with_status(api, {"phase": "Running", "attempts": 2,
                           "progress": {"step": 70, "totalSteps": 100}})
    cluster.call(lambda e: e.set_faults("rate=1,kinds=409,agents=kubetune"))
    kube = _kube(kubeconfig, Metrics())

    def guard(current: dict, patch: dict) -> dict:
        cluster.call(lambda e: e.set_faults(None))
        return forward_only(current, patch)

    stale = {"progress": {"step": 60, "totalSteps": 100}, "attempts": 1, "gpuSeconds": 5.0}
    asyncio.run(_run(kube, kube.patch_status("FinetuneJob", NAMESPACE, "router", stale,
                                             guard=guard)))
    status = api.status("FinetuneJob", "router")
    assert (status["attempts"], status["progress"]["step"], status["gpuSeconds"]) == (2, 70, 5.0)
