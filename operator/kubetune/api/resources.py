"""The two custom resources as a whole: group, version, names, and which models hold them."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from .evaljob import EvalJobSpec, EvalJobStatus
from .finetune import FinetuneJobSpec, FinetuneJobStatus
from .names import EVAL_JOB_NAME_MAX, FINETUNE_JOB_NAME_MAX

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
        _column("METHOD", "string", ".spec.method.type", "lora, qlora or full", priority=1),
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

RESOURCES = {r.kind: r for r in (FINETUNE_JOB, EVAL_JOB)}
