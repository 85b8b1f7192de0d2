"""The custom resources as a whole: group, version, names, and which models hold them."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from .evaljob import EvalJobSpec, EvalJobStatus
from .finetune import FinetuneJobSpec, FinetuneJobStatus
from .names import EVAL_JOB_NAME_MAX, FINETUNE_JOB_NAME_MAX
from .policy import ClusterFinetunePolicySpec, ClusterFinetunePolicyStatus
from .runtime import FinetuneRuntimeSpec, RuntimeStatus

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "kubetune"


@dataclass(frozen=True)
class Resource:
    """One custom resource kind and what describes it."""

    kind: str
    plural: str
    short_name: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    max_name_length: int
    printer_columns: tuple[dict, ...]
    namespaced: bool = True
    has_status: bool = True
    """Whether the operator writes a status (the status subresource is served)."""

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _column(name: str, type_: str, path: str, description: str, priority: int = 0) -> dict:
    column = {"name": name, "type": type_, "jsonPath": path, "description": description}
    if priority:
        column["priority"] = priority
    return column


_AGE = _column("AGE", "date", ".metadata.creationTimestamp", "Time since creation")
_PHASE = _column("PHASE", "string", ".status.phase", "Pending, Queued, Running, Succeeded, Failed, Suspended")

FINETUNE_JOB = Resource(
    kind="FinetuneJob",
    plural="finetunejobs",
    short_name="ftj",
    spec_model=FinetuneJobSpec,
    status_model=FinetuneJobStatus,
    max_name_length=FINETUNE_JOB_NAME_MAX,
    printer_columns=(
        _PHASE,
        _column("PROGRESS", "integer", ".status.progress.percent", "Percent of training steps done"),
        _column("LOSS", "number", ".status.progress.trainLoss", "Latest training loss"),
        _column("EVAL-LOSS", "number", ".status.progress.evalLoss", "Latest validation loss"),
        _AGE,
        _column("MODEL", "string", ".spec.model.uri", "Base model", priority=1),
        _column("METHOD", "string", ".spec.method.type", "lora, qlora, full or dpo", priority=1),
        _column("GPUS", "integer", ".spec.resources.gpus", "GPUs per node", priority=1),
    ),
)

EVAL_JOB = Resource(
    kind="EvalJob",
    plural="evaljobs",
    short_name="evj",
    spec_model=EvalJobSpec,
    status_model=EvalJobStatus,
    max_name_length=EVAL_JOB_NAME_MAX,
    printer_columns=(
        _PHASE,
        _column("SAMPLES", "integer", ".status.samples", "Examples scored"),
        _column(
            "PASSED", "string", '.status.conditions[?(@.type=="Passed")].status',
            "Whether all thresholds hold",
        ),
        _AGE,
        _column("MODEL", "string", ".spec.model.uri", "Model scored (when given by URI)", priority=1),
        _column(
            "FINETUNEJOB", "string", ".spec.model.finetuneJobRef.name",
            "FinetuneJob whose result is scored", priority=1,
        ),
    ),
)

_RUNTIME_COLUMNS = (
    _column("IMAGE", "string", ".spec.image", "Trainer image"),
    _column("DEFAULT", "boolean", ".spec.default", "Used by jobs without spec.runtimeRef"),
    _AGE,
)

CLUSTER_FINETUNE_RUNTIME = Resource(
    kind="ClusterFinetuneRuntime",
    plural="clusterfinetuneruntimes",
    short_name="cftr",
    spec_model=FinetuneRuntimeSpec,
    status_model=RuntimeStatus,
    max_name_length=253,
    printer_columns=_RUNTIME_COLUMNS,
    namespaced=False,
    has_status=False,
)

FINETUNE_RUNTIME = Resource(
    kind="FinetuneRuntime",
    plural="finetuneruntimes",
    short_name="ftr",
    spec_model=FinetuneRuntimeSpec,
    status_model=RuntimeStatus,
    max_name_length=253,
    printer_columns=_RUNTIME_COLUMNS,
    has_status=False,
)

JOBS = {r.kind: r for r in (FINETUNE_JOB, EVAL_JOB)}
"""The kinds the operator reconciles (and the webhook and admission policy check)."""
RUNTIMES = {r.kind: r for r in (CLUSTER_FINETUNE_RUNTIME, FINETUNE_RUNTIME)}
CLUSTER_FINETUNE_POLICY = Resource(
    kind="ClusterFinetunePolicy",
    plural="clusterfinetunepolicies",
    short_name="cftp",
    spec_model=ClusterFinetunePolicySpec,
    status_model=ClusterFinetunePolicyStatus,
    max_name_length=253,
    printer_columns=(
        _column("MAX-GPUS", "integer", ".spec.maxGpusPerPod", "Most GPUs per pod"),
        _column("MAX-RUNNING", "integer", ".spec.maxRunningJobs",
                "Most jobs running at once per namespace"),
        _column("GPU-HOURS", "number", ".spec.gpuHourBudget.hours",
                "GPU-hour budget per namespace"),
        _column("WINDOW-DAYS", "integer", ".spec.gpuHourBudget.windowDays",
                "Budget window in days"),
        _AGE,
    ),
    namespaced=False,
    has_status=False,
)
RESOURCES = {**JOBS, **RUNTIMES, CLUSTER_FINETUNE_POLICY.kind: CLUSTER_FINETUNE_POLICY}
