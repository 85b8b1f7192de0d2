"""Render helm/kubetune with Helm's own engine (helm-python-sdk, offline) for the tests."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "kubetune"
RELEASE = "kubetune"
NAMESPACE = "kubetune-system"

MONITORING = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    },
}

# The documented ways to install the chart; every test that renders runs over all of them.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "ha": {"replicaCount": 2},
    "ha-namespaced": {"replicaCount": 3, "watchNamespaces": ["team-a"]},
    "monitoring": MONITORING,
    "crds-off": {"crds": {"enabled": False}},
    "admission-policy-off": {"admissionPolicy": {"enabled": False}},
    "webhook": {"webhook": {"enabled": True}, "admissionPolicy": {"enabled": False}},
    "webhook-namespaced": {"webhook": {"enabled": True}, "watchNamespaces": ["team-a"]},
    "serving": {"serving": {"create": True}},
    "serving-namespaced": {"serving": {"create": True}, "watchNamespaces": ["team-a"]},
    "platform-defaults": {
        "trainer": {
            "image": "registry.example.com/kubetune/trainer:0.1.0",
            "gpuMemory": {"nvidia.com/gpu": "40Gi"},
            "allowedUriSchemes": ["s3", "pvc"],
            "gpuNodeSelector": {"nvidia.com/gpu.present": "true"},
            "gpuTolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "queueName": "gpu-queue",
            "podEnv": {"HF_HUB_OFFLINE": "1"},
            "allowedImages": ["registry.example.com/kubetune/*"],
            "allowedPriorityClasses": ["training-low"],
            "allowedTolerationKeys": ["nvidia.com/gpu"],
            "allowedNodeSelectorKeys": ["topology.kubernetes.io/zone"],
        },
        "networkPolicy": {
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 9000}]}],
        },
    },
}


@dataclass(frozen=True)
class Rendered:
    """One rendering of the chart: its manifests (parsed) and NOTES.txt."""

    manifests: tuple[dict[str, Any], ...]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]

    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    def operator_container(self) -> dict[str, Any]:
        containers = self.deployment()["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == "operator")

    def env(self) -> dict[str, str]:
        return {e["name"]: e["value"] for e in self.operator_container()["env"] if "value" in e}


@functools.cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART_DIR)


def render(values: dict[str, Any] | None = None) -> Rendered:
    """The chart rendered with these values (cached: the same values render once)."""
    return _render(json.dumps(values or {}, sort_keys=True))


@functools.cache
def _render(values_json: str) -> Rendered:
    files = chart().render(json.loads(values_json), name=RELEASE, namespace=NAMESPACE,
                           is_install=True)
    manifests = tuple(
        document
        for path, text in sorted(files.items()) if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text) if document
    )
    notes = next((text for path, text in files.items() if path.endswith("NOTES.txt")), "")
    return Rendered(manifests, notes)


def all_renderings() -> Iterator[tuple[str, Rendered]]:
    for name, values in VARIANTS.items():
        yield name, render(values)
