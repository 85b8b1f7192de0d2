"""ClusterFinetunePolicies through the local cluster in RBAC mode (the chart's RBAC and
admission policies installed, the operator as the chart's ServiceAccount): the admission
policy refuses a job over the policy at `kubectl apply`; where it is off, the operator fails the
job with PolicyViolation naming the policy; a job within policy runs; a GPU job over the
namespace's budget waits and starts when the budget frees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import requests
from kubernetes.client.exceptions import ApiException
from kubetune.local.cluster import LocalCluster, free_port

from tests.operator.cluster import GROUP, VERSION, ClusterApi, condition, wait_for

from .manifests import causal_lm_job

pytestmark = pytest.mark.e2e
BINDING = "kubetune-clusterfinetunepolicies"


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def cluster(tmp_path: Path, repo_root: Path, metrics_port: int) -> Iterator[LocalCluster]:
    local = LocalCluster(
        tmp_path / "work", kubeconfig=tmp_path / "kubeconfig", hf_home=tmp_path / "hf",
        namespaces=["team-a"], pvcs={"team-a/models": None},
        extra_pod_env={"OMP_NUM_THREADS": "1"}, metrics_port=metrics_port,
        operator_settings={"progress_interval_seconds": 0.5}, shutdown_grace_seconds=10,
        rbac=True)
    with local:
        yield local


def _metric(port: int, name: str) -> float | None:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _policy(api: ClusterApi, metrics_port: int, name: str, count: int = 1, **spec) -> None:
    api.custom.create_cluster_custom_object(GROUP, VERSION, "clusterfinetunepolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterFinetunePolicy",
        "metadata": {"name": name}, "spec": spec})
    # The operator judges jobs by the policies its watch has seen: wait until it has this one.
    wait_for(lambda: _metric(metrics_port, "kubetune_cluster_finetune_policies") == count,
             what="the operator to know the policy")


def test_a_job_over_the_gpu_limit_is_refused_at_apply_and_by_the_operator(
        api, cluster, tiny_lm, chat_data, metrics_port):
    _policy(api, metrics_port, "one-gpu", maxGpusPerPod=1,
            namespaceSelector={"matchLabels": {"kubetune.io/team": "a"}})
    api.core.patch_namespace("team-a", {"metadata": {"labels": {"kubetune.io/team": "a"}}})
    two_gpus = causal_lm_job("two-gpus", tiny_lm, chat_data, resources={"gpus": 2})
    with pytest.raises(ApiException) as refused:
        api.create(two_gpus)
    assert refused.value.status == 403
    assert (f"ValidatingAdmissionPolicy '{BINDING}' with binding '{BINDING}' denied request: "
            "ClusterFinetunePolicy one-gpu: spec.resources.gpus must be at most 1 "
            "(maxGpusPerPod)") in refused.value.body

    # A cluster without the chart's admission policy (admissionPolicy.enabled false): the
    # operator refuses the same job.
    kubernetes.client.AdmissionregistrationV1Api(api.custom.api_client) \
        .delete_validating_admission_policy_binding(BINDING)
    api.create(two_gpus)
    status = api.wait_condition("FinetuneJob", "two-gpus", "Validated", "False",
                                "PolicyViolation", timeout=60)
    assert condition({"status": status}, "Validated")["message"] == (
        "ClusterFinetunePolicy one-gpu: spec.resources.gpus must be at most 1 (maxGpusPerPod)")
    assert status["phase"] == "Failed"
    assert "two-gpus-train" not in api.jobs()

    api.create(causal_lm_job("within", tiny_lm, chat_data, max_steps=4))
    done = api.wait_status("FinetuneJob", "within",
                           lambda s: s.get("phase") in ("Succeeded", "Failed"), timeout=240)
    assert done["phase"] == "Succeeded", done.get("failure")


def test_a_gpu_job_over_the_budget_waits_and_starts_when_the_budget_frees(
        api, cluster, tiny_lm, chat_data, metrics_port):
    # 0.36 GPU-seconds: the first GPU job's pod, however short, spends it.
    _policy(api, metrics_port, "budget", gpuHourBudget={"hours": 0.0001, "windowDays": 1})
    api.create(causal_lm_job("first", tiny_lm, chat_data, max_steps=2, resources={"gpus": 1}))
    first = api.wait_status("FinetuneJob", "first", lambda s: s.get("phase") in (
        "Succeeded", "Failed") and (s.get("gpuSeconds") or 0) > 0.36, timeout=240)
    api.create(causal_lm_job("second", tiny_lm, chat_data, max_steps=2, resources={"gpus": 1}))
    waiting = api.wait_condition("FinetuneJob", "second", "Running", "False",
                                 "BudgetExhausted", timeout=60)
    assert waiting["phase"] == "Pending" and "second-train" not in api.jobs()
    assert "ClusterFinetunePolicy budget: namespace team-a used" in condition(
        {"status": waiting}, "Running")["message"]
    assert _metric(metrics_port, 'kubetune_policy_waiting_jobs{namespace="team-a",'
                                 'reason="BudgetExhausted"}') == 1.0
    assert _metric(metrics_port, 'kubetune_policy_gpu_hours_used{namespace="team-a"}') == (
        pytest.approx(first["gpuSeconds"] / 3600, rel=0.01))

    api.custom.patch_cluster_custom_object(GROUP, VERSION, "clusterfinetunepolicies", "budget",
                                           {"spec": {"gpuHourBudget": {"hours": 10}}})
    wait_for(lambda: "second-train" in api.jobs(), timeout=60,
             what="the waiting job to start once the budget was raised")
    started = api.wait_status("FinetuneJob", "second", lambda s: condition(
        {"status": s}, "Running")["reason"] != "BudgetExhausted")
    assert started.get("jobName") == "second-train"
