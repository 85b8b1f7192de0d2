"""Trainer pods built with the chart's settings are restricted, reachable and placed as set."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from kubetune.api import FinetuneJobSpec
from kubetune.operator import builders
from kubetune.operator.settings import Settings

from .chart import REPO_ROOT, VARIANTS, render


def _training_job(variant: str, example: str = "finetune-classification.yaml") -> dict:
    body = yaml.safe_load((REPO_ROOT / "examples" / example).read_text())
    body["metadata"]["uid"] = "0b6f2f5e-8f0c-4c1e-9d5e-2f1f4b0e7a11"
    settings = Settings.from_env(render(VARIANTS[variant]).env())
    return builders.training_job(body, FinetuneJobSpec.model_validate(body["spec"]), settings)


@pytest.mark.parametrize("example", ["finetune-classification.yaml", "finetune-causal-lm-lora.yaml"])
def test_trainer_pod_meets_the_restricted_pod_security_standard(example):
    job = _training_job("platform-defaults", example)
    template = job["spec"]["template"]
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer",
                                  **template["metadata"]}, "spec": template["spec"]},
                                 "1.30.0", strict=True)
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 1000) != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field), field
    assert all("hostPath" not in volume for volume in pod["volumes"])
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert not context.get("privileged", False)
        assert all("hostPort" not in port for port in container.get("ports", []))


def test_the_operators_network_policy_reaches_the_trainers_progress_port():
    rendered = render()
    job = _training_job("default")
    trainers = rendered.one("NetworkPolicy")["spec"]["egress"][2]
    selector = trainers["to"][0]["podSelector"]["matchLabels"]
    assert selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    container = job["spec"]["template"]["spec"]["containers"][0]
    progress = next(p["containerPort"] for p in container["ports"] if p["name"] == "progress")
    assert [p["port"] for p in trainers["ports"]] == [progress]


def test_platform_defaults_reach_the_trainer_pod():
    trainer = VARIANTS["platform-defaults"]["trainer"]
    job = _training_job("platform-defaults")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == trainer["image"]
    assert pod["nodeSelector"] == trainer["gpuNodeSelector"]
    assert pod["tolerations"] == trainer["gpuTolerations"]
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in container["env"]
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
