"""Pieces that FinetuneJob and EvalJob share: references, resources, conditions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .base import SpecModel, StatusModel, cel, raise_rule_problems
from .kube_syntax import (
    DNS_SUBDOMAIN,
    DNS_SUBDOMAIN_MAX,
    DnsSubdomainName,
    ExtendedResourceName,
    LabelValue,
    QualifiedName,
    Quantity,
    dns_subdomain_problems,
    label_map,
    syntax_type,
)

Name = DnsSubdomainName
ShortString = Annotated[str, Field(max_length=253)]
OptionalName = syntax_type(lambda v: dns_subdomain_problems(v) if v else [],
                           max_length=DNS_SUBDOMAIN_MAX, pattern=f"({DNS_SUBDOMAIN})?")
"""An object name, or "" for none (the API server's default of such fields)."""

Task = Literal["causal-lm", "sequence-classification"]
DatasetFormat = Literal["chat", "instruction", "completion", "text", "classification", "feedback"]


class SecretRef(SpecModel):
    """A Secret in the job's namespace whose keys become environment variables."""

    name: Name
    """Name of the Secret (HF_TOKEN, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL...)."""


MlflowUri = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s/@]+(/\S*)?$")]
"""http(s)://HOST[:PORT][/PATH]: no user:password@, credentials come from secretRef."""


class MlflowTracking(SpecModel):
    """An MLflow tracking server the job logs its run to (the pod needs network egress to it)."""

    uri: MlflowUri
    """Tracking server URL, http:// or https:// (e.g. http://mlflow.mlops:5000)."""
    experiment: ShortString = "kubetune"
    """Experiment the run is logged under; created when missing."""
    secret_ref: SecretRef | None = None
    """Secret with the server's credentials as env vars (MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN); never copied into status or logs."""


class Tracking(SpecModel):
    """Experiment tracking beyond the TensorBoard event files the trainer always writes."""

    mlflow: MlflowTracking | None = None
    """Log params, per-step metrics, evaluation results and the model card to MLflow."""


class LocalObjectRef(SpecModel):
    """An object in the same namespace, by name."""

    name: Name
    """Name of the object."""


RUNTIME_KINDS = ("ClusterFinetuneRuntime", "FinetuneRuntime")


class RuntimeRef(SpecModel):
    """A runtime template the job takes its image, placement, env, volumes and defaults from."""

    kind: Literal["ClusterFinetuneRuntime", "FinetuneRuntime"] = "ClusterFinetuneRuntime"
    """ClusterFinetuneRuntime (cluster-wide) or FinetuneRuntime (in the job's own namespace)."""
    name: Name
    """Name of the runtime."""


TOLERATION_RULES = [
    cel("(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        "must be Exists when key is empty (which matches every taint)", ".operator"),
    cel("!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        "must be empty when operator is Exists", ".value"),
    cel("!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "must be NoExecute when tolerationSeconds is set", ".effect"),
]


class Toleration(SpecModel):
    """A Kubernetes toleration, copied onto the trainer pods."""

    key: QualifiedName | None = None
    """Taint key to tolerate (a label key); unset with operator Exists matches every key."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default Equal)."""
    value: LabelValue | None = None
    """Taint value to match with operator Equal (a label value); must be unset with Exists."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches all effects."""
    toleration_seconds: int | None = Field(None, ge=0, le=31_536_000)
    """How long a NoExecute taint is tolerated; only with effect NoExecute."""

    @model_validator(mode="after")
    def _kubernetes_toleration_rules(self) -> Toleration:
        # pkg/apis/core/validation.ValidateTolerations, which the API server applies to the pods.
        problems = []
        if not self.key and self.operator != "Exists":
            problems.append(("operator", TOLERATION_RULES[0]["message"]))
        if self.operator == "Exists" and self.value:
            problems.append(("value", TOLERATION_RULES[1]["message"]))
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            problems.append(("effect", TOLERATION_RULES[2]["message"]))
        raise_rule_problems(problems)
        return self

    model_config = {"json_schema_extra": {"x-kubernetes-validations": TOLERATION_RULES}}


class PodResources(SpecModel):
    """Where and on what the job's pods run."""

    gpus: int = Field(1, ge=0, le=16)
    """GPUs per node (pod); 0 runs on CPU."""
    gpu_resource_name: ExtendedResourceName = "nvidia.com/gpu"
    """Extended resource name that GPUs are requested as (vendor domain prefix, e.g. amd.com/gpu)."""
    gpu_memory: Quantity | None = None
    """Memory of one GPU (e.g. 80Gi), used by the fit check; default from the operator's
    configuration for gpuResourceName."""
    cpu: Quantity | None = None
    """CPU request and limit per pod (e.g. "8")."""
    memory: Quantity | None = None
    """Memory request and limit per pod (e.g. 64Gi)."""
    node_selector: label_map(32) = Field(default_factory=dict)  # type: ignore[valid-type]
    """Node labels the pods must match (label keys and values)."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints the pods tolerate."""
    priority_class_name: OptionalName = ""
    """PriorityClass of the pods (a DNS subdomain name)."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """One observation of the job's state (Kubernetes API conventions)."""

    type: str = Field(max_length=64)
    """Validated, ResourcesFit, Running, Succeeded, Failed, Suspended; FinetuneJob also
    Overfitting and Plateau (training health), EvalJob Passed and LeakageDetected."""
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


class ResolvedRuntime(StatusModel):
    """The runtime a job was resolved against, recorded when first resolved: later changes
    to the runtime do not reach a job that has started."""

    kind: str = Field(max_length=64)
    """ClusterFinetuneRuntime or FinetuneRuntime."""
    name: str = Field(max_length=253)
    """Name of the runtime."""
    uid: str | None = Field(None, max_length=128)
    """uid of the runtime object."""
    generation: int | None = Field(None, ge=0)
    """metadata.generation of the runtime when resolved."""
    resource_version: str | None = Field(None, max_length=64)
    """metadata.resourceVersion of the runtime when resolved."""
    hash: str = Field(max_length=64)
    """Digest of the runtime spec used."""
    spec: dict[str, Any] = Field(default_factory=dict)
    """The runtime spec used (its env holds no secret values: secrets are only referenced)."""
