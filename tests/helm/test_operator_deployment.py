"""The operator Deployment: settings as KUBETUNE_* env, kopf's arguments, probes, HA."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys

import pytest
from kopf.cli import run as kopf_run
from kubetune.operator.settings import _PARSERS, Settings

from .chart import VARIANTS, render


def test_every_setting_is_set_by_the_chart():
    env = render().env()
    expected = {f"KUBETUNE_{name.upper()}" for name in _PARSERS}
    assert expected <= env.keys(), f"settings without a chart value: {expected - env.keys()}"


def test_default_values_give_the_operators_default_settings():
    settings = Settings.from_env(render().env())
    assert settings == dataclasses.replace(Settings(), trainer_image="ghcr.io/kubetune/trainer:0.1.0")


def test_platform_defaults_reach_the_operator():
    values = VARIANTS["platform-defaults"]["trainer"]
    settings = Settings.from_env(render(VARIANTS["platform-defaults"]).env())
    assert settings.trainer_image == values["image"]
    # Helm merges maps with the defaults: amd.com/gpu keeps its default.
    assert settings.gpu_memory == {"nvidia.com/gpu": "40Gi", "amd.com/gpu": "192Gi"}
    assert settings.allowed_uri_schemes == ("s3", "pvc")
    assert settings.default_node_selector == values["gpuNodeSelector"]
    assert settings.default_tolerations == tuple(values["gpuTolerations"])
    assert settings.default_queue_name == "gpu-queue"
    assert settings.pod_env == {"HF_HUB_OFFLINE": "1"}


def test_watched_namespaces_reach_kopf_and_the_settings():
    rendered = render(VARIANTS["namespaced"])
    assert Settings.from_env(rendered.env()).watch_namespaces == ("team-a", "team-b")
    args = rendered.operator_container()["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--all-namespaces" not in args
    assert "--all-namespaces" in render().operator_container()["args"]


def test_ports_agree_between_settings_container_service_and_probes():
    rendered = render({"operator": {"metricsPort": 9090, "healthPort": 9091}})
    container = rendered.operator_container()
    settings = Settings.from_env(rendered.env())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": settings.metrics_port, "health": settings.health_port} == {
        "metrics": 9090, "health": 9091}
    assert "--liveness=http://0.0.0.0:9091/healthz" in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    service_port = rendered.one("Service")["spec"]["ports"][0]
    assert service_port["port"] == 9090 and service_port["targetPort"] == "metrics"


def test_one_replica_runs_standalone_and_is_recreated():
    rendered = render()
    deployment = rendered.deployment()
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--standalone" in rendered.operator_container()["args"]
    assert rendered.env()["KUBETUNE_PEERING_NAME"] == ""
    kinds = {m["kind"] for m in rendered.manifests}
    assert not kinds & {"PodDisruptionBudget", "ClusterKopfPeering", "KopfPeering"}


def test_standby_replicas_elect_one_active_through_kopf_peering():
    rendered = render(VARIANTS["ha"])
    deployment = rendered.deployment()
    container = rendered.operator_container()
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert rendered.env()["KUBETUNE_PEERING_NAME"] == "kubetune"
    assert "--peering=kubetune" in container["args"] and "--standalone" not in container["args"]
    assert rendered.one("ClusterKopfPeering")["metadata"]["name"] == "kubetune"
    crds = {c["metadata"]["name"] for c in rendered.of_kind("CustomResourceDefinition")}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= crds

    budget = rendered.one("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_namespaced_standby_replicas_peer_in_each_watched_namespace():
    rendered = render(VARIANTS["ha-namespaced"])
    assert [p["metadata"]["namespace"] for p in rendered.of_kind("KopfPeering")] == ["team-a"]
    assert not rendered.of_kind("ClusterKopfPeering")


@pytest.mark.parametrize("variant", VARIANTS)
def test_kopf_accepts_the_arguments(variant):
    args = render(VARIANTS[variant]).operator_container()["args"]
    context = kopf_run.make_context("run", [*args, "--priority=7"])
    assert context.params["modules"] == ("kubetune.operator",)
    assert context.params["clusterwide"] != bool(context.params["namespaces"])
    assert bool(context.params["standalone"]) != bool(context.params["peering_name"])


def test_each_standby_replica_draws_its_own_priority(tmp_path):
    """kopf pauses all operators of equal priority: the HA command must draw one per pod."""
    container = render(VARIANTS["ha"]).operator_container()
    fake_kopf = tmp_path / "kopf"
    fake_kopf.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake_kopf.chmod(0o755)
    (tmp_path / "python").symlink_to(sys.executable)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}

    def launch() -> list[str]:
        command = [*container["command"], *container["args"]]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return result.stdout.splitlines()

    runs = [launch() for _ in range(3)]
    for argv in runs:
        assert argv[: len(container["args"]) + 1] == ["run", *container["args"]], shlex.join(argv)
        assert argv[-1].startswith("--priority=") and int(argv[-1].split("=")[1]) > 0
    assert len({argv[-1] for argv in runs}) > 1


def test_env_values_are_strings_kubernetes_accepts():
    for item in render(VARIANTS["platform-defaults"]).operator_container()["env"]:
        assert isinstance(item.get("value", ""), str), item
    json.loads(render().env()["KUBETUNE_DEFAULT_TOLERATIONS"])
