"""Operator-wide configuration, read from `KUBETUNE_*` environment variables.

The Helm chart sets these from its values. Nothing here is per job: a FinetuneJob can
override the image, queue and placement in its own spec, without an operator restart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..admission.placement import PlacementPolicy

DEFAULT_TRAINER_IMAGE = "ghcr.io/kubetune/trainer:0.1.0"


class SettingsError(ValueError):
    """A KUBETUNE_* variable has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    trainer_image: str = DEFAULT_TRAINER_IMAGE
    """KUBETUNE_TRAINER_IMAGE: image of trainer and evaluator pods unless a job sets spec.image."""
    image_pull_policy: str = "IfNotPresent"
    """KUBETUNE_IMAGE_PULL_POLICY: pull policy of trainer pods."""
    watch_namespaces: tuple[str, ...] = ()
    """KUBETUNE_WATCH_NAMESPACES: comma-separated namespaces to watch; empty: all."""
    metrics_port: int = 8080
    """KUBETUNE_METRICS_PORT: Prometheus /metrics port (0 disables)."""
    health_port: int = 8081
    """KUBETUNE_HEALTH_PORT: kopf liveness endpoint port (0 disables)."""
    progress_interval_seconds: float = 15.0
    """KUBETUNE_PROGRESS_INTERVAL_SECONDS: how often a running trainer's /progress is polled."""
    progress_port: int = 8000
    """KUBETUNE_PROGRESS_PORT: the trainers' progress port (the operator-trainer contract)."""
    gpu_memory: Mapping[str, str] = field(
        default_factory=lambda: {"nvidia.com/gpu": "80Gi", "amd.com/gpu": "192Gi"})
    """KUBETUNE_GPU_MEMORY: JSON map of GPU resource name to per-GPU memory, for the fit check."""
    allowed_uri_schemes: tuple[str, ...] = ("hf", "s3", "pvc", "file")
    """KUBETUNE_ALLOWED_URI_SCHEMES: comma-separated schemes jobs may use."""
    default_node_selector: Mapping[str, str] = field(default_factory=dict)
    """KUBETUNE_DEFAULT_NODE_SELECTOR: JSON map added to GPU pods' nodeSelector."""
    default_tolerations: tuple[Mapping[str, Any], ...] = ()
    """KUBETUNE_DEFAULT_TOLERATIONS: JSON list of tolerations added to GPU pods."""
    default_queue_name: str = ""
    """KUBETUNE_DEFAULT_QUEUE_NAME: Kueue LocalQueue for jobs that set no queueName."""
    peering_name: str = ""
    """KUBETUNE_PEERING_NAME: kopf peering object for active/standby replicas; empty: standalone."""
    config_fetch_timeout_seconds: float = 10.0
    """KUBETUNE_CONFIG_FETCH_TIMEOUT_SECONDS: timeout reading a model's config.json for the fit check."""
    rejected_retry_seconds: float = 300.0
    """KUBETUNE_REJECTED_RETRY_SECONDS: how long to wait before creating a child again after
    the API server answered 403 or 404 (400 and 422 are not retried for the same spec)."""
    pod_env: Mapping[str, str] = field(default_factory=dict)
    """KUBETUNE_POD_ENV: JSON map of environment variables added to every trainer pod
    (e.g. HF_HUB_OFFLINE for air-gapped clusters)."""

    allowed_images: tuple[str, ...] = ()
    """KUBETUNE_ALLOWED_IMAGES: comma-separated image globs a job's spec.image may name;
    empty: only trainer_image (see kubetune.admission.placement)."""
    allowed_priority_classes: tuple[str, ...] = ()
    """KUBETUNE_ALLOWED_PRIORITY_CLASSES: PriorityClasses a job may name; empty: none."""
    allowed_toleration_keys: tuple[str, ...] = ()
    """KUBETUNE_ALLOWED_TOLERATION_KEYS: taint keys a job's tolerations may name; `*`: any."""
    allowed_node_selector_keys: tuple[str, ...] = ()
    """KUBETUNE_ALLOWED_NODE_SELECTOR_KEYS: node label keys a job's nodeSelector may use;
    `*`: any."""

    webhook_port: int = 0
    """KUBETUNE_WEBHOOK_PORT: port of the operator's validating admission webhook (HTTPS);
    0: no webhook (the chart's ValidatingAdmissionPolicy does the same checks)."""
    webhook_cert_dir: str = ""
    """KUBETUNE_WEBHOOK_CERT_DIR: folder with the webhook's tls.crt and tls.key; empty: plain
    HTTP (local clusters and tests only)."""
    operator_user: str = ""
    """KUBETUNE_OPERATOR_USER: the operator's own username (system:serviceaccount:NS:NAME),
    exempt from the webhook's checks: it creates the EvalJobs of checked FinetuneJobs."""
    serving_create: bool = False
    """KUBETUNE_SERVING_CREATE: true when the chart granted the operator create on KServe's
    InferenceServices and LLMInferenceServices (chart value serving.create), so jobs'
    output.serving.create is carried out; false: such jobs say Disabled."""

    @property
    def placement_policy(self) -> PlacementPolicy:
        """What jobs may set beyond the defaults; the chart's admission policy inlines the same."""
        return PlacementPolicy(
            images=self.allowed_images or (self.trainer_image,),
            priority_classes=self.allowed_priority_classes,
            toleration_keys=self.allowed_toleration_keys,
            node_selector_keys=self.allowed_node_selector_keys,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from KUBETUNE_* variables; unset ones keep their defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            raw = env.get(f"KUBETUNE_{name.upper()}")
            if not raw:  # unset or empty: the default
                continue
            try:
                values[name] = parse(raw)
            except (ValueError, TypeError) as error:
                raise SettingsError(f"KUBETUNE_{name.upper()}: {error}") from None
        return cls(**values)

    def gpu_memory_for(self, resource_name: str) -> str | None:
        return self.gpu_memory.get(resource_name)


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _json_map(raw: str) -> dict[str, str]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return {str(k): str(v) for k, v in value.items()}


def _json_list(raw: str) -> tuple[dict, ...]:
    value = json.loads(raw)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("must be a JSON list of objects")
    return tuple(value)


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError("must be a port number 0-65535")
    return port


def _flag(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw.lower() == "true"


def _positive(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


_PARSERS = {
    "trainer_image": str,
    "image_pull_policy": str,
    "watch_namespaces": _csv,
    "metrics_port": _port,
    "health_port": _port,
    "progress_interval_seconds": _positive,
    "progress_port": _port,
    "gpu_memory": _json_map,
    "allowed_uri_schemes": _csv,
    "default_node_selector": _json_map,
    "default_tolerations": _json_list,
    "default_queue_name": str,
    "peering_name": str,
    "config_fetch_timeout_seconds": _positive,
    "rejected_retry_seconds": _positive,
    "pod_env": _json_map,
    "allowed_images": _csv,
    "allowed_priority_classes": _csv,
    "allowed_toleration_keys": _csv,
    "allowed_node_selector_keys": _csv,
    "webhook_port": _port,
    "webhook_cert_dir": str,
    "operator_user": str,
    "serving_create": _flag,
}
