"""output.serving.create: the operator creates the KServe object of a FinetuneJob once its
evaluation Passed, as the chart's ServiceAccount with the chart's serving.create RBAC, against
KServe's CRD schemas (tests/fixtures/kserve, a stand-in written from KServe's own CRDs).

Never before the verdict, never for a failed one; owned by the job, so the garbage collector
deletes it with the job; a same-named object the job did not create is left alone."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from kubetune.local.chart import find_chart_dir, operator_rbac, render_chart
from kubetune.operator.settings import Settings

from ..handoff.kserve import install_kserve_crds
from .cluster import FINETUNE_JOB, NAMESPACE, wait_for
from .conftest import OperatorControl

SERVED = copy.deepcopy(FINETUNE_JOB)
SERVED["spec"]["output"] = {"uri": "pvc://models/router", "mergeAdapter": True,
                            "serving": {"kind": "InferenceService", "create": True}}
SERVED["spec"]["evaluation"] = {"dataset": {"uri": "pvc://data/feedback/test.jsonl"},
                                "thresholds": {"f1": 0.85}}
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")


def _summary(f1: float) -> dict:
    return {"phase": "Succeeded", "reason": "Completed", "samples": 200,
            "results": [{"name": "f1", "value": f1}]}


@pytest.fixture
def operator_rbac_manifests():
    """The chart rendered with serving.create: true (its RBAC on KServe's resources)."""
    return operator_rbac(render_chart(find_chart_dir(), {"serving": {"create": True}}))


@pytest.fixture
def operator_settings(operator_settings: Settings) -> Settings:
    return dataclasses.replace(operator_settings, serving_create=True)


@pytest.fixture
def kserve(cluster):
    install_kserve_crds(cluster.url)


def _isvc(api, name="router"):
    try:
        return api.custom.get_namespaced_custom_object(*ISVC[:2], NAMESPACE, ISVC[2], name)
    except Exception:
        return None


def _train_then_evaluate(api, f1: float, existing: bool = False,
                         waiting: str = "WaitingForEvaluation") -> None:
    api.create(SERVED)
    wait_for(lambda: api.raw_job("router-train"), what="the training Job")
    pod = api.start_pod("router-train")
    api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "result": {
        "adapterUri": "pvc://models/router/adapter", "modelUri": "pvc://models/router/merged"}})
    api.finish_job("router-train")
    status = api.wait_status("FinetuneJob", "router",
                             lambda s: (s.get("serving") or {}).get("reason"))
    assert status["serving"]["reason"] == waiting
    assert (_isvc(api) is not None) == existing  # nothing of ours before the verdict
    wait_for(lambda: api.raw_job("router-eval-eval"), what="the evaluation Job")
    pod = api.start_pod("router-eval-eval")
    api.end_pod(pod, exit_code=0, message=_summary(f1))
    api.finish_job("router-eval-eval")


def test_a_passed_evaluation_creates_the_inference_service_owned_by_the_job(
        api, kserve, operator):
    _train_then_evaluate(api, f1=0.91)
    status = api.wait_status("FinetuneJob", "router",
                             lambda s: (s.get("serving") or {}).get("reason") == "Created")
    assert status["serving"]["kind"] == "InferenceService"
    isvc = _isvc(api)
    job = api.get("FinetuneJob", "router")
    (owner,) = isvc["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("FinetuneJob", job["metadata"]["uid"])
    # The same object the trainer writes to serving.yaml: the merged model on KServe's
    # huggingface runtime, from the claim the trainer wrote it to.
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/router/merged"
    assert any(e["reason"] == "ServingCreated" for e in api.events("router"))


def test_a_failed_evaluation_creates_nothing(api, kserve, operator):
    _train_then_evaluate(api, f1=0.5)
    status = api.wait_status("FinetuneJob", "router", lambda s: (s.get("serving") or {}).get(
        "reason") == "EvaluationNotPassed")
    assert "did not pass" in status["serving"]["message"]
    assert _isvc(api) is None


def test_an_object_the_job_did_not_create_is_left_alone(api, kserve, operator):
    theirs = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
              "metadata": {"name": "router", "namespace": NAMESPACE},
              "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"},
                                               "storageUri": "s3://someone/else"}}}}
    api.custom.create_namespaced_custom_object(*ISVC[:2], NAMESPACE, ISVC[2], theirs)
    _train_then_evaluate(api, f1=0.91, existing=True)
    api.wait_status("FinetuneJob", "router",
                    lambda s: (s.get("serving") or {}).get("reason") == "NameTaken")
    isvc = _isvc(api)
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://someone/else"
    assert not isvc["metadata"].get("ownerReferences")


def test_without_kserve_installed_the_status_says_so(api, operator):
    _train_then_evaluate(api, f1=0.91)
    status = api.wait_status("FinetuneJob", "router",
                             lambda s: (s.get("serving") or {}).get("reason") == "KServeMissing")
    assert "refused" in status["serving"]["message"]


def test_off_on_this_cluster_the_status_says_where_to_turn_it_on(
        api, kserve, operator_settings, operator_kubeconfig, fit_checker):
    control = OperatorControl(dataclasses.replace(operator_settings, serving_create=False),
                              operator_kubeconfig, fit_checker).start()
    try:
        _train_then_evaluate(api, f1=0.91, waiting="Disabled")
        status = api.wait_status("EvalJob", "router-eval",
                                 lambda s: s.get("phase") == "Succeeded")
        assert status["phase"] == "Succeeded"
        assert api.status("FinetuneJob", "router")["serving"]["reason"] == "Disabled"
        assert "serving.create" in api.status("FinetuneJob", "router")["serving"]["message"]
        assert _isvc(api) is None
    finally:
        control.stop()
