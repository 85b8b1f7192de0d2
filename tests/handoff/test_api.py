"""output.serving and spec.tracking in the API: the rules (in the models and as CEL rules the
API server runs), the resolved trainer config, and how the operator passes them on."""

from __future__ import annotations

import pytest
from kubetune.api import EvalJobSpec, FinetuneJobSpec, trainer_config_for
from kubetune.api.finetune import (
    SERVING_LLM_CAUSAL,
    SERVING_NEEDS_WHOLE_MODEL,
    Evaluation,
)
from kubetune.operator import builders
from kubetune.operator.settings import Settings
from pydantic import ValidationError

from tests.api.manifests import FINETUNE_JOB, changed
from tests.api.test_crds import _cel_failures

CAUSAL = changed(changed(FINETUNE_JOB, "spec.model", {"uri": "hf://Qwen/Qwen2.5-0.5B"}),
                 "spec.evaluation.thresholds", {"loss": 2.0})


def with_changes(base, **changes):
    doc = base
    for path, value in changes.items():
        doc = changed(doc, path.replace("__", "."), value)
    return doc


@pytest.mark.parametrize(("doc", "message", "resolved"), [
    # A classifier's adapter alone cannot be served: merge it first.
    (with_changes(FINETUNE_JOB, spec__output__serving={}), SERVING_NEEDS_WHOLE_MODEL, None),
    (with_changes(FINETUNE_JOB, spec__output__serving={"kind": "InferenceService"}),
     SERVING_NEEDS_WHOLE_MODEL, None),
    (with_changes(FINETUNE_JOB, spec__output__serving={}, spec__output__mergeAdapter=True),
     None, "InferenceService"),
    (with_changes(FINETUNE_JOB, spec__output__serving={"kind": "LLMInferenceService"},
                  spec__output__mergeAdapter=True), SERVING_LLM_CAUSAL, None),
    # A causal LM's adapter: vLLM loads it on the base model.
    (with_changes(CAUSAL, spec__output__serving={}), None, "LLMInferenceService"),
    (with_changes(CAUSAL, spec__output__serving={"kind": "InferenceService"}),
     SERVING_NEEDS_WHOLE_MODEL, None),
    (with_changes(CAUSAL, spec__output__serving={}, spec__method__type="full"),
     None, "InferenceService"),
])
def test_serving_rules_hold_in_cel_and_in_the_models(doc, message, resolved):
    failures = _cel_failures("FinetuneJob", doc)
    if message is None:
        assert failures == []
        config = trainer_config_for("j", "ns", FinetuneJobSpec.model_validate(doc["spec"]))
        assert config.output.serving.kind == resolved
    else:
        assert message in failures
        with pytest.raises(ValidationError, match=r"output\.serving"):
            FinetuneJobSpec.model_validate(doc["spec"])


@pytest.mark.parametrize("uri", ["http://user:secret@mlflow:5000", "ftp://mlflow", "mlflow:5000"])
def test_tracking_uri_is_http_without_credentials(uri):
    """Credentials belong in tracking.mlflow.secretRef: a URI goes to status and logs."""
    doc = with_changes(FINETUNE_JOB, spec__tracking={"mlflow": {"uri": uri}})
    with pytest.raises(ValidationError, match=r"tracking\.mlflow\.uri"):
        FinetuneJobSpec.model_validate(doc["spec"])


TRACKING = {"mlflow": {"uri": "https://mlflow.mlops:5000", "experiment": "support",
                       "secretRef": {"name": "mlflow-credentials"}}}


def test_tracking_credentials_reach_the_pod_only_as_env_from_a_secret():
    doc = with_changes(FINETUNE_JOB, spec__tracking=TRACKING)
    spec = FinetuneJobSpec.model_validate(doc["spec"])
    body = {**doc, "metadata": {**doc["metadata"], "uid": "u-1"}}
    job = builders.training_job(body, spec, Settings())
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "mlflow-credentials"}} in container["envFrom"]
    config = trainer_config_for("j", "ns", spec)
    assert config.tracking.mlflow.uri == "https://mlflow.mlops:5000"


def test_the_evaluation_of_a_tracked_finetune_job_is_tracked_too():
    doc = with_changes(FINETUNE_JOB, spec__tracking=TRACKING)
    spec = FinetuneJobSpec.model_validate(doc["spec"])
    body = {**doc, "metadata": {**doc["metadata"], "uid": "u-1"}}
    evaljob = builders.eval_job_from_finetune(body, spec, spec.evaluation)
    assert evaljob["spec"]["tracking"] == TRACKING
    assert EvalJobSpec.model_validate(evaljob["spec"]).tracking.mlflow.experiment == "support"
    assert isinstance(spec.evaluation, Evaluation)


def test_the_tracking_server_is_not_checked_against_the_storage_schemes():
    """allowedUriSchemes governs where models and data live (hf, s3, pvc, file); the MLflow
    address is http(s) and must not make the spec invalid (the local-cluster run of
    examples/serving failed with InvalidSpec before)."""
    from kubetune.operator.reconcile import spec_problems

    doc = with_changes(FINETUNE_JOB, spec__tracking=TRACKING)
    assert spec_problems(doc, ("hf", "s3", "pvc", "file")) == []
    assert spec_problems(with_changes(doc, spec__output__uri="s3://b/out/"), ("pvc",)) != []
