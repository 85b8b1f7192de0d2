"""EvalJob: score a base or finetuned model on a dataset and compare it with a baseline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import SpecModel, StatusModel, cel
from .common import Condition, LocalObjectRef, Name, PodResources, SecretRef, ShortString, Task
from .finetune import EvalDataset, Failure, Phase
from .metrics import ALL_METRICS, TASK_METRICS, Threshold, metric_problems
from .uri import Uri


class EvalModel(SpecModel):
    """The model to score: a URI, or the result of a FinetuneJob in this namespace."""

    uri: Uri | None = None
    """A model folder or repo (a merged model, or an adapter folder with its base named)."""
    finetune_job_ref: LocalObjectRef | None = None
    """A FinetuneJob in the same namespace; the EvalJob waits until it succeeds."""
    task: Task | None = None
    """causal-lm or sequence-classification; taken from the FinetuneJob when referenced,
    causal-lm otherwise."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the model's location."""

    @model_validator(mode="after")
    def _exactly_one_source(self) -> EvalModel:
        if (self.uri is None) == (self.finetune_job_ref is None):
            raise ValueError("set exactly one of uri and finetuneJobRef")
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("has(self.uri) != has(self.finetuneJobRef)",
                    "set exactly one of uri and finetuneJobRef")
            ]
        }
    }


class BaselineModel(SpecModel):
    """A second model scored on the same data."""

    uri: Uri
    """The baseline model."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the baseline's location."""


class Generation(SpecModel):
    """Greedy generation settings for causal-lm metrics."""

    max_new_tokens: int = Field(256, ge=1, le=32_768)
    """Tokens generated per example at most."""
    batch_size: int = Field(8, ge=1, le=4096)
    """Examples generated at once."""


class EvalOutput(SpecModel):
    """Where the per-example predictions and the error-analysis report go."""

    uri: Uri
    """Folder for predictions.jsonl and report.json."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the output location."""


class EvalJobSpec(SpecModel):
    """Which model to score, on what data, with which metrics and thresholds."""

    model: EvalModel
    """The model to score."""
    baseline: BaselineModel | None = None
    """A baseline scored on the same data."""
    compare_baseline: bool | None = None
    """With finetuneJobRef: use the FinetuneJob's base model as the baseline."""
    dataset: EvalDataset
    """The evaluation set."""
    metrics: list[Literal[ALL_METRICS]] | None = Field(None, max_length=16)  # type: ignore[valid-type]
    """Metrics to compute (default: all of the task's)."""
    average: Literal["macro", "micro", "weighted"] = "macro"
    """How per-class precision, recall and F1 are averaged."""
    generation: Generation = Field(default_factory=Generation)
    """Generation settings (causal-lm)."""
    thresholds: dict[str, Threshold] = Field(default_factory=dict, max_length=16)
    """Minimum values (maximum for loss and perplexity) that must all hold for Passed=True."""
    resources: PodResources = Field(default_factory=PodResources)
    """GPUs and placement of the evaluation pod."""
    output: EvalOutput | None = None
    """Where predictions and the report go."""
    backoff_limit: int = Field(1, ge=0, le=100)
    """Retries of a failed evaluation."""
    active_deadline_seconds: int | None = Field(None, ge=1, le=31_536_000)
    """Wall-clock limit of the evaluation Job."""
    ttl_seconds_after_finished: int = Field(604_800, ge=0, le=31_536_000)
    """Child objects are removed this long after finishing; the EvalJob stays."""
    image: ShortString | None = None
    """Evaluator image override; default from the operator's configuration."""
    queue_name: Name | None = None
    """Kueue LocalQueue, so GPU evaluations count against the same quotas as training;
    sets kueue.x-k8s.io/queue-name on the Job (default: the operator's default queue)."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> EvalJobSpec:
        problems = metric_problems(self.model.task, self.metrics, self.thresholds, "spec")
        if self.compare_baseline and self.model.finetune_job_ref is None:
            problems.append("compareBaseline needs model.finetuneJobRef (or set baseline.uri)")
        if self.compare_baseline and self.baseline is not None:
            problems.append("set at most one of baseline and compareBaseline")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.compareBaseline) || !self.compareBaseline"
                    " || has(self.model.finetuneJobRef)",
                    "compareBaseline needs model.finetuneJobRef (or set baseline.uri)",
                ),
                cel(
                    "!(has(self.compareBaseline) && self.compareBaseline && has(self.baseline))",
                    "set at most one of baseline and compareBaseline",
                ),
                *[
                    cel(
                        f"!has(self.model.task) || self.model.task != '{task}'"
                        f" || self.thresholds.all(k, k in {list(names)!r})",
                        f"thresholds of task {task} must be among {', '.join(names)}",
                        ".thresholds",
                    )
                    for task, names in TASK_METRICS.items()
                ],
            ]
        }
    }


class MetricResult(StatusModel):
    """One metric of the model, and of the baseline when there is one."""

    name: str = Field(max_length=64)
    value: float
    baseline: float | None = None
    delta: float | None = None
    """value - baseline."""
    threshold: float | None = None
    passed: bool | None = None


class ConfusionPair(StatusModel):
    label: str = Field(max_length=253)
    predicted: str = Field(max_length=253)
    count: int = Field(ge=0)


class ClassScore(StatusModel):
    label: str = Field(max_length=253)
    f1: float


class ErrorAnalysis(StatusModel):
    """Where the model goes wrong; the full report is at reportUri."""

    confusion: list[ConfusionPair] = Field(default_factory=list, max_length=10)
    """The most frequent (true label, predicted label) mistakes."""
    worst_classes: list[ClassScore] = Field(default_factory=list, max_length=10)
    """Classes with the lowest F1."""


class EvalJobStatus(StatusModel):
    """Observed state of an EvalJob; conditions are the source of truth."""

    observed_generation: int | None = Field(None, ge=0)
    phase: Phase | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    job_name: str | None = Field(None, max_length=63)
    task: Task | None = None
    samples: int | None = Field(None, ge=0)
    results: list[MetricResult] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    error_analysis: ErrorAnalysis | None = None
    report_uri: str | None = Field(None, max_length=2048)
    start_time: str | None = Field(None, max_length=64)
    completion_time: str | None = Field(None, max_length=64)
    failure: Failure | None = None
