"""The pure builders: what the Job, Service and pods look like for a given spec."""

from __future__ import annotations

import copy

import pytest
from kubetune.api import FinetuneJobSpec
from kubetune.operator import builders
from kubetune.operator.settings import Settings

from .cluster import FINETUNE_JOB

BODY = {**copy.deepcopy(FINETUNE_JOB),
        "metadata": {"name": "router", "namespace": "team-a", "uid": "u-1"}}


def build(settings: Settings | None = None, **spec_changes) -> dict:
    spec = copy.deepcopy(BODY["spec"])
    for path, value in spec_changes.items():
        node = spec
        *parents, last = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return builders.training_job(BODY, FinetuneJobSpec.model_validate(spec),
                                 settings or Settings())


def test_single_node_job_is_not_indexed_and_has_no_rendezvous():
    job = build()
    assert "completionMode" not in job["spec"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--main_process_ip" not in command
    assert "subdomain" not in job["spec"]["template"]["spec"]


def test_multi_node_job_is_indexed_behind_a_headless_service():
    job = build(resources__nodes=2, resources__gpus=4)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == "router-train"
    command = pod["containers"][0]["command"]
    assert command[command.index("--main_process_ip") + 1] == "router-train-0.router-train"
    assert command[command.index("--machine_rank") + 1] == "$(JOB_COMPLETION_INDEX)"
    assert command[command.index("--num_processes") + 1] == "8"
    service = builders.headless_service(BODY)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": "router-train"}


def test_gpus_become_limits_of_the_configured_resource_and_get_platform_placement():
    settings = Settings(default_node_selector={"pool": "gpu"},
                        default_tolerations=({"key": "nvidia.com/gpu", "operator": "Exists"},))
    job = build(settings, resources__gpus=2, resources__gpuResourceName="amd.com/gpu",
                resources__memory="64Gi", resources__nodeSelector={"zone": "a"})
    pod = job["spec"]["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits == {"amd.com/gpu": "2", "memory": "64Gi"}
    assert pod["nodeSelector"] == {"pool": "gpu", "zone": "a"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]


def test_cpu_jobs_get_no_gpu_placement_defaults():
    settings = Settings(default_node_selector={"pool": "gpu"})
    pod = build(settings)["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]


def test_job_carries_retry_deadline_ttl_and_queue():
    job = build(backoffLimit=4, activeDeadlineSeconds=3600, ttlSecondsAfterFinished=60,
                queueName="gpu-queue")
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (
        4, 3600, 60)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert spec["suspend"] is True
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]


def test_default_queue_applies_when_the_job_names_none():
    job = build(Settings(default_queue_name="team-queue"))
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-queue"


def test_restricted_pod_security_and_secrets_only_as_env_from():
    pod = build()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert not any("secretKeyRef" in str(e) for e in container["env"])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/kubetune", "/dev/shm", "/tmp", "/mnt/pvc/data", "/mnt/pvc/models"} <= mounts
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KUBETUNE_PVC_PATH_DATA"] == "/mnt/pvc/data"
    assert env["KUBETUNE_TERMINATION_LOG"] == container["terminationMessagePath"]


def test_config_map_holds_the_resolved_trainer_config():
    from kubetune.api import trainer_config_for

    spec = FinetuneJobSpec.model_validate(BODY["spec"])
    config_map = builders.config_map("FinetuneJob", BODY, trainer_config_for("router", "team-a", spec))
    assert config_map["metadata"]["name"] == "router-config"
    assert '"learningRate": 0.0002' in config_map["data"]["config.json"]  # lora's default
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == "u-1"


@pytest.mark.parametrize(("method", "given", "resolved"), [
    ("lora", None, 2e-4), ("qlora", None, 2e-4), ("full", None, 2e-5), ("full", 5e-5, 5e-5)])
def test_the_default_learning_rate_fits_the_method(method, given, resolved):
    """A LoRA-sized rate (2e-4) overwrites a pretrained model in a full finetune: unset, a full
    finetune gets 2e-5; a rate the user wrote is kept."""
    from kubetune.api import trainer_config_for

    spec = copy.deepcopy(BODY["spec"])
    spec["method"] = {"type": method}
    spec["resources"] = {"gpus": 1}
    if given is not None:
        spec["hyperparameters"]["learningRate"] = given
    config = trainer_config_for("router", "team-a", FinetuneJobSpec.model_validate(spec))
    assert config.hyperparameters.learning_rate == resolved


@pytest.mark.parametrize(("requested", "planned", "resolved"), [
    ("auto", "fsdp", "fsdp"), ("auto", "ddp", "ddp"), ("auto", None, "ddp"),
    ("ddp", "fsdp", "ddp"), ("fsdp", None, "fsdp"),
])  # fmt: skip
def test_the_trainer_gets_a_resolved_strategy(requested, planned, resolved):
    """auto becomes the planner's choice (ddp when the fit was not computed); an explicit
    ddp or fsdp is what the trainer runs."""
    from kubetune.api import trainer_config_for

    spec = copy.deepcopy(BODY["spec"])
    spec["method"] = {"type": "full"}
    spec["resources"] = {"gpus": 2, "strategy": requested}
    config = trainer_config_for("router", "team-a", FinetuneJobSpec.model_validate(spec),
                                strategy=planned)
    assert config.resources.strategy == resolved


@pytest.mark.parametrize("claim", ["data", "my.claim-2"])
def test_pvc_env_names_are_valid_env_var_names(claim):
    import re

    assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", builders.pvc_path_env(claim))


def test_claim_volume_names_are_distinct_dns_labels():
    """The API server refuses a pod whose volume names repeat or are not DNS labels
    (pkg/apis/core/validation.ValidateVolumes: IsDNS1123Label, "Duplicate value")."""
    import re

    claims = ["a.b", "a-b", "x" * 60 + ".y", "x" * 60 + "-y", "c" * 45 + ".d" * 50]
    names = [builders._volume_name(claim) for claim in claims]
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def test_runtime_pod_extras_join_the_operators_without_replacing_its_own():
    """A runtime's env replaces a default such as HF_HOME (its models forbid POD_IP and
    KUBETUNE_*), its volumes and mounts sit beside the operator's, its labels never replace
    the operator's selector labels, and its service account gets no token."""
    from kubetune.runtimes import PodExtras

    extras = PodExtras(
        env=[{"name": "HF_HOME", "value": "/mnt/hf"},
             {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        volumes=[{"name": "hf", "persistentVolumeClaim": {"claimName": "hf-cache", "readOnly": False}}],
        volume_mounts=[{"name": "hf", "mountPath": "/mnt/hf", "readOnly": False}],
        labels={"cost-center": "ml"}, annotations={"example.com/a": "b"},
        service_account_name="trainer")
    spec = FinetuneJobSpec.model_validate(BODY["spec"])
    template = builders.training_job(BODY, spec, Settings(), pod=extras)["spec"]["template"]
    pod, container = template["spec"], template["spec"]["containers"][0]
    env = [e["name"] for e in container["env"]]
    assert env.count("HF_HOME") == 1 and {"name": "HF_HOME", "value": "/mnt/hf"} in container["env"]
    assert {"POD_IP", "KUBETUNE_TERMINATION_LOG", "TOKEN"} <= set(env)
    assert [v["name"] for v in pod["volumes"]][:4] == ["config", "dshm", "tmp", "cache"]
    assert pod["volumes"][-1]["name"] == "hf" and container["volumeMounts"][-1]["mountPath"] == "/mnt/hf"
    assert template["metadata"]["labels"]["cost-center"] == "ml"
    assert template["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubetune"
    assert template["metadata"]["annotations"] == {"example.com/a": "b"}
    assert pod["serviceAccountName"] == "trainer" and pod["automountServiceAccountToken"] is False
    plain = builders.training_job(BODY, spec, Settings())["spec"]["template"]
    assert "serviceAccountName" not in plain["spec"] and "annotations" not in plain["metadata"]


def test_cpu_offload_and_the_fast_path_settings_reach_the_trainer_config():
    from kubetune.api import trainer_config_for

    spec = copy.deepcopy(BODY["spec"])
    spec["method"] = {"type": "full"}
    spec["resources"] = {"gpus": 2, "strategy": "fsdp", "cpuOffload": True}
    spec["hyperparameters"]["fastPath"] = {"attention": "flex_attention", "liger": "off"}
    config = trainer_config_for("router", "team-a", FinetuneJobSpec.model_validate(spec))
    wire = config.to_wire()
    assert wire["resources"]["cpuOffload"] is True
    assert wire["hyperparameters"]["fastPath"] == {
        "attention": "flex_attention", "liger": "off", "fusedOptimizer": "auto", "compile": "auto"}
