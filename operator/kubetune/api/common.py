"""Pieces that FinetuneJob and EvalJob share: references, resources, conditions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import SpecModel, StatusModel

# Kubernetes limits, written where they are used in the schema.
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"

Name = Annotated[str, Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX,
                            pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
Quantity = Annotated[str, Field(min_length=1, max_length=64, pattern=QUANTITY_PATTERN)]
ShortString = Annotated[str, Field(max_length=253)]

Task = Literal["causal-lm", "sequence-classification"]
DatasetFormat = Literal["chat", "instruction", "completion", "text", "classification"]


class SecretRef(SpecModel):
    """A Secret in the job's namespace whose keys become environment variables."""

    name: Name
    """Name of the Secret (HF_TOKEN, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL...)."""


class LocalObjectRef(SpecModel):
    """An object in the same namespace, by name."""

    name: Name
    """Name of the object."""


class Toleration(SpecModel):
    """A Kubernetes toleration, copied onto the trainer pods."""

    key: ShortString | None = None
    """Taint key to tolerate; empty with operator Exists matches every key."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default Equal)."""
    value: ShortString | None = None
    """Taint value to match with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches all effects."""
    toleration_seconds: int | None = Field(None, ge=0, le=31_536_000)
    """How long a NoExecute taint is tolerated."""


class PodResources(SpecModel):
    """Where and on what the job's pods run."""

    gpus: int = Field(1, ge=0, le=16)
    """GPUs per node (pod); 0 runs on CPU."""
    gpu_resource_name: ShortString = "nvidia.com/gpu"
    """Extended resource name that GPUs are requested as."""
    gpu_memory: Quantity | None = None
    """Memory of one GPU (e.g. 80Gi), used by the fit check; default from the operator's
    configuration for gpuResourceName."""
    cpu: Quantity | None = None
    """CPU request and limit per pod (e.g. "8")."""
    memory: Quantity | None = None
    """Memory request and limit per pod (e.g. 64Gi)."""
    node_selector: dict[str, ShortString] = Field(default_factory=dict, max_length=32)
    """Node labels the pods must match."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints the pods tolerate."""
    priority_class_name: ShortString = ""
    """PriorityClass of the pods."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """One observation of the job's state (Kubernetes API conventions)."""

    type: str = Field(max_length=64)
    """Validated, ResourcesFit, Running, Succeeded, Failed, Suspended (EvalJob: Passed)."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(max_length=64)
    """A CamelCase word saying why; always set."""
    message: str = Field("", max_length=4096)
    """Human-readable details."""
    last_transition_time: str | None = Field(None, max_length=64)
    """When status last changed (RFC 3339)."""
    observed_generation: int | None = Field(None, ge=0)
    """metadata.generation this condition was computed from."""
