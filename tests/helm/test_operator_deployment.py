"""The operator Deployment: settings as KUBETUNE_* env, kopf's arguments, probes, HA."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from importlib.metadata import entry_points

import pytest
from kubetune import cli
from kubetune.operator import runner
from kubetune.operator.settings import _PARSERS, Settings

from .chart import VARIANTS, render


def test_every_setting_is_set_by_the_chart():
    env = render().env()
    expected = {f"KUBETUNE_{name.upper()}" for name in _PARSERS}
    assert expected <= env.keys(), f"settings without a chart value: {expected - env.keys()}"


def test_default_values_give_the_operators_default_settings():
    settings = Settings.from_env(render().env())
    assert settings == dataclasses.replace(
        Settings(), trainer_image="ghcr.io/kubetune/trainer:0.1.0",
        operator_user="system:serviceaccount:kubetune-system:kubetune")


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


def test_watched_namespaces_reach_the_settings():
    rendered = render(VARIANTS["namespaced"])
    assert Settings.from_env(rendered.env()).watch_namespaces == ("team-a", "team-b")
    assert Settings.from_env(render().env()).watch_namespaces == ()


def test_ports_agree_between_settings_container_service_and_probes():
    rendered = render({"operator": {"metricsPort": 9090, "healthPort": 9091}})
    container = rendered.operator_container()
    settings = Settings.from_env(rendered.env())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": settings.metrics_port, "health": settings.health_port} == {
        "metrics": 9090, "health": 9091}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    service_port = rendered.one("Service")["spec"]["ports"][0]
    assert service_port["port"] == 9090 and service_port["targetPort"] == "metrics"


def test_one_replica_runs_standalone_and_is_recreated():
    rendered = render()
    deployment = rendered.deployment()
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert rendered.env()["KUBETUNE_PEERING_NAME"] == ""
    kinds = {m["kind"] for m in rendered.manifests}
    assert not kinds & {"PodDisruptionBudget", "ClusterKopfPeering", "KopfPeering"}


def test_standby_replicas_elect_one_active_through_kopf_peering():
    rendered = render(VARIANTS["ha"])
    deployment = rendered.deployment()
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert rendered.env()["KUBETUNE_PEERING_NAME"] == "kubetune"
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


def test_env_values_are_strings_kubernetes_accepts():
    for item in render(VARIANTS["platform-defaults"]).operator_container()["env"]:
        assert isinstance(item.get("value", ""), str), item
    json.loads(render().env()["KUBETUNE_DEFAULT_TOLERATIONS"])


def _start_operator(monkeypatch, rendered) -> Settings:
    """Run the chart's container command through the `kubetune` CLI up to the operator."""
    container = rendered.operator_container()
    for name in _PARSERS:
        monkeypatch.delenv(f"KUBETUNE_{name.upper()}", raising=False)
    for name, value in rendered.env().items():
        monkeypatch.setenv(name, value)
    started: list[Settings] = []

    async def run_operator(settings: Settings) -> None:
        started.append(settings)

    monkeypatch.setattr(runner, "run_operator", run_operator)
    monkeypatch.setattr(runner, "configure_logging", lambda json_format=False: None)
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert container["command"][0] == "kubetune" and scripts["kubetune"] == "kubetune.cli:main"
    assert cli.main([*container["command"][1:], *container["args"]]) == 0
    return started[0]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_container_command_starts_the_operator_with_the_charts_settings(monkeypatch, variant):
    rendered = render(VARIANTS[variant])
    assert _start_operator(monkeypatch, rendered) == Settings.from_env(rendered.env())


@pytest.mark.parametrize(("variant", "clusterwide", "peering"), [
    ("default", True, None), ("namespaced", False, None),
    ("ha", True, "kubetune"), ("ha-namespaced", False, "kubetune"),
])
def test_kopf_gets_namespaces_peering_and_the_probe_endpoint(monkeypatch, variant, clusterwide, peering):
    rendered = render(VARIANTS[variant])
    settings = Settings.from_env(rendered.env())
    calls: dict = {}

    async def operator(**kwargs) -> None:
        calls.update(kwargs)

    monkeypatch.setattr(runner.kopf, "operator", operator)
    monkeypatch.setattr(runner, "start_http_server", lambda port, **_: calls.setdefault("metrics", port))
    asyncio.run(runner.run_operator(settings))

    container = rendered.operator_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert calls["metrics"] == ports["metrics"]
    assert calls["liveness_endpoint"] == f"http://0.0.0.0:{ports['health']}/healthz"
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in (
        container["env"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert calls["clusterwide"] is clusterwide
    assert calls["namespaces"] == VARIANTS[variant].get("watchNamespaces", [])
    assert calls["peering_name"] == peering
    assert calls["standalone"] is (peering is None)
