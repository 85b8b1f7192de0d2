"""ClusterFinetunePolicy: what a platform team allows the FinetuneJobs and EvalJobs of the
namespaces it selects (cluster-scoped; several may select a namespace, and all must hold).

Static rules (models, data, images, GPUs, nodes, queues, deadline, labels) are enforced at
apply time by the chart's ValidatingAdmissionPolicy and again by the operator; budgets
(`maxRunningJobs`, `gpuHourBudget`) only by the operator, which holds a job back until they
allow it. The rules themselves live in kubetune.policies, shared by every layer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import SpecModel, StatusModel, cel, raise_rule_problems
from .kube_syntax import LabelValue, QualifiedName, QueueName, label_map

Glob = Annotated[str, Field(min_length=1, max_length=512)]
"""A glob: `*` matches any run of characters (slashes and colons included); nothing else is
special."""


class LabelSelectorRequirement(SpecModel):
    """One requirement of a label selector (as in metav1.LabelSelectorRequirement)."""

    key: QualifiedName
    """The label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """In, NotIn, Exists or DoesNotExist."""
    values: list[LabelValue] = Field(default_factory=list, max_length=64)
    """Values for In and NotIn (at least one); empty for Exists and DoesNotExist."""

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        # apimachinery ValidateLabelSelectorRequirement
        if self.operator in ("In", "NotIn") and not self.values:
            raise_rule_problems([("values", "must be non-empty when operator is In or NotIn")])
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise_rule_problems([("values",
                                  "must be empty when operator is Exists or DoesNotExist")])
        return self

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!(self.operator in ['In', 'NotIn']) || self.values.size() > 0",
            "must be non-empty when operator is In or NotIn", ".values"),
        cel("!(self.operator in ['Exists', 'DoesNotExist']) || self.values.size() == 0",
            "must be empty when operator is Exists or DoesNotExist", ".values"),
    ]}}


class LabelSelector(SpecModel):
    """A label selector; empty selects everything. All requirements must hold."""

    match_labels: label_map(32) = Field(default_factory=dict)  # type: ignore[valid-type]
    """Labels that must be present with these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list,
                                                             max_length=16)
    """Further requirements on labels."""


class GpuHourBudget(SpecModel):
    """GPU-hours a namespace may use in a sliding window (from its jobs' status.gpuSeconds)."""

    hours: float = Field(ge=0, le=10_000_000)
    """GPU-hours per namespace within the window; a new job waits (BudgetExhausted) while the
    namespace has used this many."""
    window_days: int = Field(30, ge=1, le=366)
    """Length of the sliding window in days: jobs that finished longer ago no longer count."""


DEFAULT_QUEUE_RULE = cel(
    "!has(self.defaultQueue) || !has(self.allowedQueues) || self.defaultQueue in self.allowedQueues",
    "must be one of allowedQueues", ".defaultQueue")


class ClusterFinetunePolicySpec(SpecModel):
    """A platform team's rules for the FinetuneJobs and EvalJobs of the namespaces it selects."""

    namespace_selector: LabelSelector = Field(default_factory=LabelSelector)
    """Namespaces this policy applies to, by their labels; empty: every namespace."""
    allowed_models: list[Glob] | None = Field(None, max_length=32)
    """URI globs a base or scored model (spec.model.uri, spec.baseline.uri) must match; unset:
    any."""
    allowed_data_uris: list[Glob] | None = Field(None, max_length=32)
    """URI globs every dataset and output URI must match; unset: any."""
    allowed_images: list[Glob] | None = Field(None, max_length=32)
    """Globs spec.image must match; unset: any. An empty list allows no spec.image at all:
    jobs then run the image of their runtime (spec.runtimeRef) or the operator's default."""
    max_gpus_per_pod: int | None = Field(None, ge=0, le=16)
    """Most GPUs one pod may request (spec.resources.gpus)."""
    max_nodes: int | None = Field(None, ge=1, le=256)
    """Most nodes one FinetuneJob may use (spec.resources.nodes)."""
    max_running_jobs: int | None = Field(None, ge=0, le=10_000)
    """Most jobs (FinetuneJobs and EvalJobs) running at once per namespace; more wait
    (WaitingForPolicy) and start when one finishes. Checked by the operator."""
    gpu_hour_budget: GpuHourBudget | None = None
    """GPU-hours per namespace in a sliding window; checked by the operator."""
    allowed_queues: list[QueueName] | None = Field(None, max_length=32)
    """Kueue LocalQueues jobs may name in spec.queueName; unset: any. With a list and no
    defaultQueue, spec.queueName must be set."""
    default_queue: QueueName | None = None
    """LocalQueue for jobs that name none (spec.queueName unset); it must be in
    allowedQueues when both are set."""
    max_active_deadline_seconds: int | None = Field(None, ge=1, le=31_536_000)
    """Longest spec.activeDeadlineSeconds allowed; a job that sets none gets this one."""
    required_labels: list[QualifiedName] | None = Field(None, max_length=32)
    """Label keys every job must carry (with a non-empty value), e.g. a cost centre."""

    @model_validator(mode="after")
    def _default_queue_is_allowed(self) -> ClusterFinetunePolicySpec:
        if (self.default_queue and self.allowed_queues is not None
                and self.default_queue not in self.allowed_queues):
            raise_rule_problems([("defaultQueue", DEFAULT_QUEUE_RULE["message"])])
        return self

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [DEFAULT_QUEUE_RULE]}}


class ClusterFinetunePolicyStatus(StatusModel):
    """Not written by the operator today; kept so that the schema is complete."""

    observed_generation: int | None = Field(None, ge=0)
