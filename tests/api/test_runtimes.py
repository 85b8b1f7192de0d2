"""Runtime templates: what a runtime may hold (models and CRD agree), and the pure merge of a
job with its runtime (kubetune.runtimes), field by field: job wins, locks, defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubetune.api import EvalJobSpec, FinetuneJobSpec
from kubetune.api.resources import CLUSTER_FINETUNE_RUNTIME, FINETUNE_RUNTIME
from kubetune.api.runtime import FinetuneRuntimeSpec
from kubetune.crdgen import crd
from kubetune.runtimes import (
    INVALID_RUNTIME,
    MULTIPLE_DEFAULT_RUNTIMES,
    RUNTIME_FIELD_LOCKED,
    RUNTIME_NOT_FOUND,
    RuntimeProblem,
    resolve,
    runtime_hash,
    select_runtime,
)
from kubetune.validation import validate_document
from pydantic import ValidationError

from .manifests import EVAL_JOB, FINETUNE_JOB

RUNTIME_SPEC: dict[str, Any] = {
    "image": "registry.example.com/kubetune/trainer:1.2",
    "resources": {"gpuResourceName": "amd.com/gpu", "gpus": 2, "memory": "64Gi",
                  "nodeSelector": {"pool": "gpu"},
                  "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                  "priorityClassName": "training"},
    "env": [{"name": "HF_HOME", "value": "/mnt/hf-cache"},
            {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "key"}}}],
    "volumes": [{"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}],
    "volumeMounts": [{"name": "hf-cache", "mountPath": "/mnt/hf-cache"}],
    "hyperparameters": {"lora": {"learningRate": 0.0001, "batchSize": 4},
                        "full": {"learningRate": 0.00001}},
    "podTemplate": {"labels": {"team-cost-center": "ml"}, "annotations": {"example.com/x": "y"},
                    "serviceAccountName": "trainer"},
    "locked": ["image", "resources.gpuResourceName"],
}


def runtime(spec: dict[str, Any] | None = None, *, kind: str = "ClusterFinetuneRuntime",
            name: str = "gpu", namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "generation": 3,
                            "resourceVersion": "41"}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "kubetune.io/v1alpha1", "kind": kind, "metadata": meta,
            "spec": copy.deepcopy(RUNTIME_SPEC if spec is None else spec)}


def job(**changes: Any) -> FinetuneJobSpec:
    spec = copy.deepcopy(FINETUNE_JOB["spec"])
    spec["resources"] = {}
    spec["hyperparameters"] = {"epochs": 3}
    spec.update(changes)
    return FinetuneJobSpec.model_validate(spec)


# --- the models --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, field, words", [
    ({"volumes": [{"name": "host", "hostPath": {"path": "/"}}]}, "hostPath", "Extra inputs"),
    ({"env": [{"name": "TOKEN", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}, "fieldRef",
     "Extra inputs"),
    ({"env": [{"name": "POD_IP", "value": "1"}]}, "name", "set by the operator"),
    ({"env": [{"name": "KUBETUNE_CACHE_DIR", "value": "/x"}]}, "name", "set by the operator"),
    ({"env": [{"name": "A"}]}, "env", "exactly one of value and valueFrom"),
    ({"volumes": [{"name": "config", "emptyDir": {}}]}, "name", "operator's"),
    ({"volumes": [{"name": "a", "emptyDir": {}, "configMap": {"name": "b"}}]}, "volumes",
     "exactly one of"),
    ({"volumes": [{"name": "a", "emptyDir": {}}],
      "volumeMounts": [{"name": "a", "mountPath": "/etc/kubetune/x"}]}, "mountPath", "overlaps"),
    ({"volumes": [{"name": "a", "emptyDir": {}}],
      "volumeMounts": [{"name": "a", "mountPath": "/"}]}, "mountPath", "overlaps"),
    ({"volumeMounts": [{"name": "nope", "mountPath": "/data"}]}, "volumeMounts[0].name",
     "must name a volume"),
    ({"podTemplate": {"labels": {"kubetune.io/finetunejob": "x"}}}, "labels", "reserved"),
    ({"locked": ["resources.cpu"]}, "locked", "does not set it"),
    ({"locked": ["env"]}, "locked", "Input should be"),
])
def test_a_runtime_cannot_weaken_the_restricted_pod(bad, field, words):
    with pytest.raises(ValidationError) as error:
        FinetuneRuntimeSpec.model_validate(bad)
    assert field in str(error.value) and words in str(error.value)


@pytest.mark.parametrize("bad", [
    {"volumes": [{"name": "host", "hostPath": {"path": "/"}}]},
    {"env": [{"name": "POD_IP", "value": "1"}]},
    {"volumes": [{"name": "a", "emptyDir": {}, "configMap": {"name": "b"}}]},
])
def test_kubetune_validate_rejects_what_the_model_rejects(bad):
    problems = validate_document(runtime(bad))
    assert problems, "validate accepted a runtime the API server must refuse"


def test_an_example_runtime_is_valid_and_the_crds_are_scoped():
    assert validate_document(runtime()) == []
    assert validate_document(runtime(kind="FinetuneRuntime", namespace="team-a")) == []
    assert crd(CLUSTER_FINETUNE_RUNTIME)["spec"]["scope"] == "Cluster"
    assert crd(FINETUNE_RUNTIME)["spec"]["scope"] == "Namespaced"


# --- choosing the runtime ----------------------------------------------------------------------

def test_runtime_ref_picks_the_named_runtime_and_a_namespaced_one_only_from_its_namespace():
    ns = [runtime(kind="FinetuneRuntime", name="mine", namespace="team-a"),
          runtime(kind="FinetuneRuntime", name="theirs", namespace="team-b")]
    spec = job(runtimeRef={"kind": "FinetuneRuntime", "name": "mine"})
    assert select_runtime(spec, "team-a", [], ns)["metadata"]["name"] == "mine"
    other = job(runtimeRef={"kind": "FinetuneRuntime", "name": "theirs"})
    with pytest.raises(RuntimeProblem) as error:
        select_runtime(other, "team-a", [], ns)
    assert error.value.reason == RUNTIME_NOT_FOUND
    assert "FinetuneRuntime theirs does not exist in namespace team-a" in str(error.value)
    cluster = job(runtimeRef={"name": "gpu"})
    assert select_runtime(cluster, "team-a", [runtime()], ns)["kind"] == "ClusterFinetuneRuntime"


def test_the_default_runtime_applies_without_a_ref_namespace_first():
    marked = {**RUNTIME_SPEC, "default": True}
    cluster = [runtime(marked, name="cluster-default"), runtime(name="other")]
    ns = [runtime(marked, kind="FinetuneRuntime", name="team-default", namespace="team-a")]
    assert select_runtime(job(), "team-a", cluster, ns)["metadata"]["name"] == "team-default"
    assert select_runtime(job(), "team-b", cluster, ns)["metadata"]["name"] == "cluster-default"
    assert select_runtime(job(), "team-b", [runtime(name="other")], []) is None


def test_two_marked_defaults_are_an_error_naming_both():
    marked = {**RUNTIME_SPEC, "default": True}
    cluster = [runtime(marked, name="b"), runtime(marked, name="a")]
    with pytest.raises(RuntimeProblem) as error:
        select_runtime(job(), "team-a", cluster, [])
    assert error.value.reason == MULTIPLE_DEFAULT_RUNTIMES
    assert "ClusterFinetuneRuntime a, ClusterFinetuneRuntime b" in str(error.value)


# --- merging -----------------------------------------------------------------------------------

def test_no_runtime_leaves_the_spec_as_it_is():
    spec = job()
    resolution = resolve(spec, None)
    assert resolution.spec is spec and resolution.pod is None and resolution.record is None


def test_runtime_fills_what_the_job_leaves_unset():
    resolved = resolve(job(), runtime())
    spec, res = resolved.spec, resolved.spec.resources
    assert spec.image == RUNTIME_SPEC["image"]
    assert (res.gpus, res.gpu_resource_name, res.memory) == (2, "amd.com/gpu", "64Gi")
    assert res.node_selector == {"pool": "gpu"}
    assert [t.key for t in res.tolerations] == ["gpu"]
    assert res.priority_class_name == "training"
    assert (spec.hyperparameters.learning_rate, spec.hyperparameters.batch_size) == (0.0001, 4)
    assert spec.hyperparameters.epochs == 3  # the runtime does not set it


@pytest.mark.parametrize("field, job_value, wire_key", [
    ("gpus", 4, "gpus"),
    ("memory", "32Gi", "memory"),
    ("priority_class_name", "urgent", "priorityClassName"),
])
def test_job_values_win_over_unlocked_runtime_values(field, job_value, wire_key):
    resolved = resolve(job(resources={wire_key: job_value}), runtime())
    assert getattr(resolved.spec.resources, field) == job_value


def test_job_hyperparameters_win_and_the_method_picks_the_defaults():
    hyper = resolve(job(hyperparameters={"epochs": 3, "batchSize": 32}), runtime()).spec.hyperparameters
    assert (hyper.batch_size, hyper.learning_rate) == (32, 0.0001)
    full = resolve(job(method={"type": "full"}), runtime()).spec.hyperparameters
    assert (full.learning_rate, full.batch_size) == (0.00001, 8)


def test_maps_merge_and_lists_add_up():
    resolved = resolve(job(resources={
        "nodeSelector": {"zone": "a", "pool": "big"},
        "tolerations": [{"key": "spot", "operator": "Exists"}]}), runtime()).spec.resources
    assert resolved.node_selector == {"pool": "big", "zone": "a"}
    assert [t.key for t in resolved.tolerations] == ["gpu", "spot"]


@pytest.mark.parametrize("changes, field", [
    ({"image": "docker.io/someone/miner:latest"}, "spec.image"),
    ({"resources": {"gpuResourceName": "nvidia.com/mig-1g.10gb"}}, "spec.resources.gpuResourceName"),
])
def test_a_locked_field_set_differently_is_an_error_naming_runtime_and_field(changes, field):
    with pytest.raises(RuntimeProblem) as error:
        resolve(job(**changes), runtime())
    assert error.value.reason == RUNTIME_FIELD_LOCKED
    (problem,) = error.value.problems
    assert problem.startswith(f"{field}: ") and "ClusterFinetuneRuntime gpu locks" in problem


def test_a_locked_field_set_to_the_runtimes_value_is_fine():
    resolved = resolve(job(image=RUNTIME_SPEC["image"]), runtime())
    assert resolved.spec.image == RUNTIME_SPEC["image"]


def test_locked_hyperparameters_and_node_selector():
    spec = {**RUNTIME_SPEC, "locked": ["hyperparameters.learningRate", "resources.nodeSelector"]}
    with pytest.raises(RuntimeProblem) as error:
        resolve(job(hyperparameters={"epochs": 3, "learningRate": 0.1},
                    resources={"nodeSelector": {"pool": "cpu"}}), runtime(spec))
    assert [p.split(":")[0] for p in error.value.problems] == [
        "spec.resources.nodeSelector", "spec.hyperparameters.learningRate"]


def test_pod_extras_and_the_record():
    resolved = resolve(job(), runtime())
    assert resolved.pod.env == RUNTIME_SPEC["env"]
    assert resolved.pod.volumes == [{"name": "hf-cache", "persistentVolumeClaim": {
        "claimName": "hf-cache", "readOnly": False}}]
    assert resolved.pod.volume_mounts[0]["mountPath"] == "/mnt/hf-cache"
    assert resolved.pod.service_account_name == "trainer"
    assert resolved.pod.labels == {"team-cost-center": "ml"}
    record = resolved.record
    assert (record["kind"], record["name"], record["uid"], record["generation"],
            record["resourceVersion"]) == ("ClusterFinetuneRuntime", "gpu", "uid-gpu", 3, "41")
    assert record["hash"] == runtime_hash(record["spec"])
    changed = resolve(job(), runtime({**RUNTIME_SPEC, "image": "registry.example.com/t:2"}))
    assert changed.record["hash"] != record["hash"]


def test_a_runtime_that_makes_the_job_invalid_is_reported_with_its_name():
    spec = {"resources": {"gpus": 0}}
    with pytest.raises(RuntimeProblem) as error:
        resolve(job(method={"type": "qlora"}, resources={}), runtime(spec))
    assert error.value.reason == INVALID_RUNTIME
    assert "qlora needs GPUs" in str(error.value) and "ClusterFinetuneRuntime gpu" in str(error.value)


def test_eval_jobs_take_image_placement_and_pod_extras():
    spec = EvalJobSpec.model_validate({**EVAL_JOB["spec"], "runtimeRef": {"name": "gpu"}})
    resolved = resolve(spec, runtime())
    assert resolved.spec.image == RUNTIME_SPEC["image"]
    assert resolved.spec.resources.gpu_resource_name == "amd.com/gpu"
    assert resolved.pod.volumes[0]["name"] == "hf-cache"


def test_a_dpo_job_takes_the_runtimes_dpo_defaults_and_none_of_another_methods():
    dpo_job = job(method={"type": "dpo"}, model={"uri": "hf://org/small-lm"},
                  dataset={"uri": "s3://datasets/feedback/train.jsonl", "format": "feedback"},
                  evaluation=None)
    plain = resolve(dpo_job, runtime()).spec.hyperparameters
    assert plain.learning_rate is None  # lora's and full's defaults are not dpo's
    spec = copy.deepcopy(RUNTIME_SPEC)
    spec["hyperparameters"]["dpo"] = {"learningRate": 0.00005, "batchSize": 2}
    hyper = resolve(dpo_job, runtime(spec)).spec.hyperparameters
    assert (hyper.learning_rate, hyper.batch_size, hyper.epochs) == (0.00005, 2, 3)
