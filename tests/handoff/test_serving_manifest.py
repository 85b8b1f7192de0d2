"""The KServe manifest of output.serving, checked against KServe's CRD schema: the minimal
offline copy of its fields in tests/fixtures/kserve/crds.yaml, installed in the emulator and
created with fieldValidation=Strict, as kube-apiserver would with KServe installed
(https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation)."""

from __future__ import annotations

import copy

import pytest
from kubetune.emulator import EmulatorThread
from kubetune.serving import kserve_uri, notes_for, serving_manifest

from .kserve import create_strictly, install_kserve_crds


@pytest.fixture(scope="module")
def kserve_cluster():
    with EmulatorThread() as cluster:
        install_kserve_crds(cluster.url)
        yield cluster.url


CASES = {
    "merged-model-on-a-gpu": dict(kind="InferenceService", task="causal-lm",
                                  model_uri="s3://models/support/merged", adapter_uri=None,
                                  gpus=1),
    "full-classifier-on-cpu": dict(kind="InferenceService", task="sequence-classification",
                                   model_uri="pvc://models/support/model", adapter_uri=None,
                                   gpus=0),
    "adapter-on-vllm": dict(kind="LLMInferenceService", task="causal-lm", model_uri=None,
                            adapter_uri="s3://models/support/adapter", gpus=1),
    "whole-model-on-vllm": dict(kind="LLMInferenceService", task="causal-lm",
                                model_uri="s3://models/support/model", adapter_uri=None, gpus=2),
}


@pytest.mark.parametrize("case", CASES)
def test_each_manifest_is_accepted_by_kserves_schema(kserve_cluster, case):
    manifest = serving_manifest(name=f"job-{case}", namespace="default",
                                base_uri="hf://Qwen/Qwen2.5-0.5B@abc123", **CASES[case])
    response = create_strictly(kserve_cluster, manifest)
    assert response.status_code == 201, response.text


def test_the_strict_schema_rejects_a_misspelt_field(kserve_cluster):
    """The check can fail: KServe's field is storageUri, not storageURI."""
    manifest = serving_manifest(name="typo", namespace="default", base_uri="hf://a/b",
                                **CASES["merged-model-on-a-gpu"])
    broken = copy.deepcopy(manifest)
    model = broken["spec"]["predictor"]["model"]
    model["storageURI"] = model.pop("storageUri")
    response = create_strictly(kserve_cluster, broken)
    # kube-apiserver answers a strict decoding error with 400 BadRequest.
    assert response.status_code == 400 and "storageURI" in response.text


def test_an_adapter_named_like_its_base_model_is_refused(kserve_cluster):
    """KServe's webhook refuses an adapter whose name is the base model's (ValidateLoRAAdapters);
    kubetune names the base `<job>-base` so the adapter can carry the job's name."""
    manifest = serving_manifest(name="same", namespace="default", base_uri="hf://a/b",
                                **CASES["adapter-on-vllm"])
    assert manifest["spec"]["model"]["name"] != manifest["spec"]["model"]["lora"]["adapters"][0]["name"]
    broken = copy.deepcopy(manifest)
    broken["spec"]["model"]["name"] = "same"
    response = create_strictly(kserve_cluster, broken)
    assert response.status_code == 422 and "differ from base model" in response.text


def test_the_adapter_manifest_serves_the_pinned_base_with_the_adapter():
    manifest = serving_manifest(name="bot", namespace="team", base_uri="hf://Qwen/Q@0123abcd",
                                **CASES["adapter-on-vllm"])
    assert manifest["apiVersion"] == "serving.kserve.io/v1alpha1"
    model = manifest["spec"]["model"]
    # KServe's storage initializer reads hf://OWNER/MODEL:REVISION.
    assert model["uri"] == "hf://Qwen/Q:0123abcd"
    assert model["lora"]["adapters"] == [{"name": "bot", "uri": "s3://models/support/adapter"}]
    resources = manifest["spec"]["template"]["containers"][0]["resources"]
    assert resources["limits"] == {"nvidia.com/gpu": "1"}


def test_the_whole_model_manifest_uses_the_huggingface_runtime():
    manifest = serving_manifest(name="bot", namespace="team", base_uri="hf://a/b",
                                **CASES["full-classifier-on-cpu"])
    model = manifest["spec"]["predictor"]["model"]
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert model["modelFormat"] == {"name": "huggingface"}
    assert model["storageUri"] == "pvc://models/support/model"
    assert "resources" not in model  # CPU: no GPU limit


def test_uris_kserve_cannot_read_come_with_what_to_do():
    assert kserve_uri("pvc://claim/out/adapter/") == "pvc://claim/out/adapter"
    assert any("copy the folder" in n for n in notes_for("file:///tmp/out/merged", adapter=False))
    assert any("hf:// and s3://" in n for n in notes_for("pvc://claim/out/adapter", adapter=True))
