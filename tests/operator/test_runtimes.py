"""Runtime templates through the real operator, under the chart's RBAC: a job that names a
runtime gets its image, env, volumes and pod overrides; a running job keeps the runtime it
resolved; a missing runtime makes the job wait; a locked field, a namespaced runtime of
another namespace and the chart's allowlists are enforced."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from kubernetes.client import CustomObjectsApi

from .cluster import FINETUNE_JOB, GROUP, NAMESPACE, VERSION, condition, wait_for

IMAGE = "registry.example.com/kubetune/trainer:1.2"
RUNTIME_SPEC: dict[str, Any] = {
    "image": IMAGE,
    "resources": {"memory": "2Gi", "nodeSelector": {"pool": "training"}},
    "env": [{"name": "HF_HOME", "value": "/mnt/hf-cache"},
            {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "key"}}}],
    "volumes": [{"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}],
    "volumeMounts": [{"name": "hf-cache", "mountPath": "/mnt/hf-cache"}],
    "hyperparameters": {"lora": {"learningRate": 0.0001}},
    "podTemplate": {"labels": {"cost-center": "ml"}, "serviceAccountName": "trainer"},
    "locked": ["image"],
}


@pytest.fixture
def operator_settings(operator_settings):
    return dataclasses.replace(operator_settings, allowed_images=(
        operator_settings.trainer_image, "registry.example.com/kubetune/*"),
        allowed_node_selector_keys=("pool",))


@pytest.fixture
def custom(api) -> CustomObjectsApi:
    return api.custom


def create_cluster_runtime(custom: CustomObjectsApi, name: str = "gpu",
                           spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """As `kubectl apply` does: unknown fields are refused (fieldValidation=Strict)."""
    return custom.create_cluster_custom_object(GROUP, VERSION, "clusterfinetuneruntimes", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterFinetuneRuntime",
        "metadata": {"name": name}, "spec": copy.deepcopy(spec or RUNTIME_SPEC)},
        field_validation="Strict")


def job_with(name: str = "router", **spec: Any) -> dict[str, Any]:
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["metadata"]["name"] = name
    doc["spec"].update(spec)
    return doc


def template(api, job_name: str) -> dict[str, Any]:
    return wait_for(lambda: api.raw_job(job_name), what=job_name)["spec"]["template"]


def test_a_job_naming_a_runtime_gets_its_image_env_volumes_and_pod_overrides(api, operator, custom):
    runtime = create_cluster_runtime(custom)
    api.create(job_with(runtimeRef={"kind": "ClusterFinetuneRuntime", "name": "gpu"}))
    pod_template = template(api, "router-train")
    pod = pod_template["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_HOME"] == {"name": "HF_HOME", "value": "/mnt/hf-cache"}  # replaces the default
    assert env["WANDB_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "wandb", "key": "key"}}
    assert "POD_IP" in env and "KUBETUNE_TERMINATION_LOG" in env
    assert {"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache",
                                                          "readOnly": False}} in pod["volumes"]
    assert {"name": "hf-cache", "mountPath": "/mnt/hf-cache",
            "readOnly": False} in container["volumeMounts"]
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert pod["nodeSelector"] == {"pool": "training"}
    assert pod["serviceAccountName"] == "trainer"
    assert pod["automountServiceAccountToken"] is False  # the runtime's account, no token
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod_template["metadata"]["labels"]["cost-center"] == "ml"
    config = api.config_map("router-config")["data"]["config.json"]
    assert '"learningRate": 0.0001' in config  # the runtime's lora default

    # The pod the Job controller makes from this template is valid for the API server.
    pod_name = api.start_pod("router-train")
    assert api.core.read_namespaced_pod(pod_name, NAMESPACE).spec.service_account_name == "trainer"

    recorded = api.wait_status("FinetuneJob", "router", lambda s: s.get("runtime"))["runtime"]
    meta = runtime["metadata"]
    assert (recorded["kind"], recorded["name"], recorded["uid"], recorded["resourceVersion"]) == (
        "ClusterFinetuneRuntime", "gpu", meta["uid"], meta["resourceVersion"])
    assert recorded["spec"]["image"] == IMAGE and len(recorded["hash"]) == 16


def test_a_runtime_change_does_not_alter_a_running_job(api, operator, custom):
    create_cluster_runtime(custom)
    api.create(job_with(runtimeRef={"name": "gpu"}))
    before = template(api, "router-train")
    api.start_pod("router-train")
    recorded = api.wait_status("FinetuneJob", "router", lambda s: s.get("runtime"))["runtime"]

    changed = copy.deepcopy(RUNTIME_SPEC)
    changed["image"] = "registry.example.com/kubetune/trainer:2.0"
    changed["env"].append({"name": "NEW", "value": "1"})
    custom.patch_cluster_custom_object(GROUP, VERSION, "clusterfinetuneruntimes", "gpu",
                                       {"spec": changed})
    # A new job sees the new runtime, so the operator has seen the change ...
    api.create(job_with("second", runtimeRef={"name": "gpu"}))
    assert template(api, "second-train")["spec"]["containers"][0]["image"].endswith(":2.0")
    # ... and the running job, reconciled again by a pod event, keeps the old one.
    api.set_pod_status("router-train-0-a", {"phase": "Running", "podIP": "127.0.0.1",
                                            "message": "poke"})
    api.wait_condition("FinetuneJob", "router", "Running", "True")
    assert api.raw_job("router-train")["spec"]["template"] == before
    assert api.status("FinetuneJob", "router")["runtime"] == recorded
    second = api.wait_status("FinetuneJob", "second", lambda s: s.get("runtime"))["runtime"]
    assert second["hash"] != recorded["hash"]


def test_a_missing_runtime_makes_the_job_wait_until_it_exists(api, operator, custom):
    api.create(job_with(runtimeRef={"kind": "FinetuneRuntime", "name": "team-gpu"}))
    status = api.wait_condition("FinetuneJob", "router", "Validated", "False", "RuntimeNotFound")
    message = condition({"status": status}, "Validated")["message"]
    assert "FinetuneRuntime team-gpu does not exist in namespace team-a" in message
    assert status["phase"] == "Pending" and api.jobs() == []

    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "finetuneruntimes", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "FinetuneRuntime",
        "metadata": {"name": "team-gpu", "namespace": NAMESPACE}, "spec": RUNTIME_SPEC})
    assert template(api, "router-train")["spec"]["containers"][0]["image"] == IMAGE
    api.wait_condition("FinetuneJob", "router", "Validated", "True")


def test_a_namespaced_runtime_is_never_read_from_another_namespace(api, operator, custom):
    api.create_namespace("team-b")
    custom.create_namespaced_custom_object(GROUP, VERSION, "team-b", "finetuneruntimes", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "FinetuneRuntime",
        "metadata": {"name": "theirs", "namespace": "team-b"}, "spec": RUNTIME_SPEC})
    api.create(job_with(runtimeRef={"kind": "FinetuneRuntime", "name": "theirs"}))
    api.wait_condition("FinetuneJob", "router", "Validated", "False", "RuntimeNotFound")
    assert api.jobs() == []


def test_a_locked_field_set_differently_fails_naming_runtime_and_field(api, operator, custom):
    create_cluster_runtime(custom)
    api.create(job_with(runtimeRef={"name": "gpu"}, image="registry.example.com/kubetune/other:1"))
    status = api.wait_condition("FinetuneJob", "router", "Failed", "True", "RuntimeFieldLocked")
    message = condition({"status": status}, "Validated")["message"]
    assert message.startswith("spec.image: ") and "ClusterFinetuneRuntime gpu locks" in message
    assert api.jobs() == []


def test_the_default_runtime_applies_and_two_defaults_are_named(api, operator, custom):
    """The operator reads runtimes from its watch cache: a default applies to jobs it sees after
    the runtime's watch event, so each step first waits for a job that names the runtime."""
    create_cluster_runtime(custom, "a", {**RUNTIME_SPEC, "default": True})
    api.create(job_with("probe-a", runtimeRef={"name": "a"}))
    template(api, "probe-a-train")
    api.create(job_with())
    assert template(api, "router-train")["spec"]["containers"][0]["image"] == IMAGE
    assert api.wait_status("FinetuneJob", "router", lambda s: s.get("runtime"))["runtime"][
        "name"] == "a"

    create_cluster_runtime(custom, "b", {**RUNTIME_SPEC, "default": True})
    api.create(job_with("probe-b", runtimeRef={"name": "b"}))
    template(api, "probe-b-train")
    api.create(job_with("second"))
    status = api.wait_condition("FinetuneJob", "second", "Validated", "False",
                                "MultipleDefaultRuntimes")
    assert "ClusterFinetuneRuntime a, ClusterFinetuneRuntime b" in condition(
        {"status": status}, "Validated")["message"]


def test_the_chart_allowlist_holds_for_a_runtimes_image(api, operator, custom):
    create_cluster_runtime(custom, spec={**RUNTIME_SPEC, "image": "docker.io/someone/miner:1"})
    api.create(job_with(runtimeRef={"name": "gpu"}))
    status = api.wait_condition("FinetuneJob", "router", "Failed", "True", "NotPermitted")
    message = condition({"status": status}, "Validated")["message"]
    assert message.startswith("spec.image: not permitted") and "ClusterFinetuneRuntime gpu" in message
    assert api.jobs() == []


def test_an_eval_job_naming_a_runtime_gets_its_image_and_volumes(api, operator, custom):
    create_cluster_runtime(custom)
    api.create({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "EvalJob",
        "metadata": {"name": "check", "namespace": NAMESPACE},
        "spec": {"model": {"uri": "pvc://models/router", "task": "sequence-classification"},
                 "dataset": {"uri": "pvc://data/feedback/test.jsonl"},
                 "resources": {"gpus": 0}, "runtimeRef": {"name": "gpu"}},
    })
    pod = template(api, "check-eval")["spec"]
    assert pod["containers"][0]["image"] == IMAGE
    assert "hf-cache" in [v["name"] for v in pod["volumes"]]
    assert pod["serviceAccountName"] == "trainer"
    assert api.wait_status("EvalJob", "check", lambda s: s.get("runtime"))["runtime"]["name"] == "gpu"


@pytest.mark.parametrize("change, words", [
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
     'unknown field \\"spec.volumes[0].hostPath\\"'),
    ({"volumeMounts": [{"name": "nope", "mountPath": "/data"}]}, "must name a volume"),
    ({"volumeMounts": [{"name": "hf-cache", "mountPath": "/etc/kubetune/x"}]},
     "must not overlap the operator's mounts"),
    ({"volumeMounts": [{"name": "hf-cache", "mountPath": "/mnt/../etc"}]}, "must not contain '..'"),
    ({"env": [{"name": "KUBETUNE_CACHE_DIR", "value": "/x"}]}, "set by the operator"),
    ({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "Duplicate value"),
])
def test_the_api_server_refuses_a_runtime_that_would_weaken_the_pod(api, custom, change, words):
    """The CRD's schema, list-map keys and CEL rules, as kube-apiserver applies them at create
    (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules,
    and x-kubernetes-list-type map: duplicate keys are refused)."""
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as error:
        create_cluster_runtime(custom, spec={**RUNTIME_SPEC, **change})
    assert error.value.status in (400, 422) and words in error.value.body


def test_policies_hold_for_what_the_runtime_brings(api, operator, custom):
    """A runtime's GPUs count against maxGpusPerPod; its image counts as a runtime's image
    for allowedImages [] ("images from runtimes only")."""
    api.custom.create_cluster_custom_object(GROUP, VERSION, "clusterfinetunepolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterFinetunePolicy",
        "metadata": {"name": "one-gpu"}, "spec": {"maxGpusPerPod": 1, "allowedImages": []}})
    wait_for(lambda: operator.metrics.policies._value.get() == 1, what="the policy to be known")
    create_cluster_runtime(custom, "two", {**RUNTIME_SPEC, "resources": {"gpus": 2}})
    create_cluster_runtime(custom, "one", {**RUNTIME_SPEC, "resources": {"gpus": 1}})
    api.create(job_with("big", runtimeRef={"name": "two"}, resources={}))
    status = api.wait_condition("FinetuneJob", "big", "Validated", "False", "PolicyViolation")
    assert condition({"status": status}, "Validated")["message"] == (
        "ClusterFinetunePolicy one-gpu: spec.resources.gpus must be at most 1 (maxGpusPerPod)"
        " (with ClusterFinetuneRuntime two applied)")
    assert status["phase"] == "Failed" and "big-train" not in api.jobs()
    api.create(job_with("small", runtimeRef={"name": "one"}, resources={}))
    pod = template(api, "small-train")["spec"]
    assert pod["containers"][0]["image"] == IMAGE
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
