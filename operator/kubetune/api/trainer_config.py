"""The operator-trainer contract: the resolved spec the trainer reads from its mounted file.

The operator renders these from a validated spec (`trainer_config_for` and `eval_config_for`)
into a ConfigMap; the trainer validates the file with the same models. Defaults are resolved
here, once, so the trainer never guesses what the user meant.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import SpecModel
from .common import Task, Tracking
from .evaljob import (
    CHEAP_BASELINES,
    BaselineName,
    BaselineTraining,
    Benchmark,
    BenchmarkData,
    EvalJobSpec,
    Generation,
)
from .finetune import (
    Checkpointing,
    DatasetSpec,
    DpoSpec,
    EvalDataset,
    FinetuneJobSpec,
    Hyperparameters,
    MethodSpec,
    default_learning_rate,
)
from .metrics import TASK_METRICS, Gate
from .uri import Uri

CONFIG_API_VERSION = "kubetune.io/v1alpha1"


class TrainerModel(SpecModel):
    uri: Uri
    task: Task
    num_labels: int | None = None


ServingKind = Literal["InferenceService", "LLMInferenceService"]


class TrainerServing(SpecModel):
    kind: ServingKind  # resolved: never unset
    gpus: int
    gpu_resource_name: str


class TrainerOutput(SpecModel):
    uri: Uri
    merge_adapter: bool
    overwrite: bool = False
    """Delete another job's checkpoints under uri instead of failing with OutputInUse."""
    serving: TrainerServing | None = None
    """Write serving.yaml (a KServe manifest) next to the model."""


class TrainerResources(SpecModel):
    gpus: int
    nodes: int
    strategy: Literal["ddp", "fsdp"] = "ddp"  # resolved: never auto
    cpu_offload: bool = False  # fsdp only: sharded state in host memory


class ResolvedHyperparameters(Hyperparameters):
    packing: bool  # resolved: true for causal-lm unless the user said false
    learning_rate: float  # resolved: the spec's, or the method's default


class TrainerConfig(SpecModel):
    """Everything the trainer needs, with every default applied."""

    api_version: Literal["kubetune.io/v1alpha1"] = CONFIG_API_VERSION
    kind: Literal["TrainerConfig"] = "TrainerConfig"
    job_name: str
    namespace: str
    job_uid: str | None = None
    """The FinetuneJob's uid, stamped into each checkpoint: a run resumes only its own."""
    model: TrainerModel
    dataset: DatasetSpec
    method: MethodSpec
    hyperparameters: ResolvedHyperparameters
    output: TrainerOutput
    checkpointing: Checkpointing
    resources: TrainerResources
    tracking: Tracking | None = None


class EvalModelConfig(SpecModel):
    uri: Uri
    base_uri: Uri | None = None
    """Base model of an adapter-only model (LoRA output without a merged copy)."""


class EvalConfig(SpecModel):
    """Everything the evaluator needs, with every default applied."""

    api_version: Literal["kubetune.io/v1alpha1"] = CONFIG_API_VERSION
    kind: Literal["EvalConfig"] = "EvalConfig"
    job_name: str
    namespace: str
    task: Task
    model: EvalModelConfig
    baseline: EvalModelConfig | None = None
    """A second model: the base model (scored as `chance` or `base`) or the user's baseline."""
    baselines: list[Literal[BaselineName, "model"]] = Field(default_factory=list)  # type: ignore[valid-type]
    """Which baselines to score (resolved: the spec's list, or the task's cheap ones)."""
    encoder: EvalModelConfig | None = None
    """The frozen base encoder the probe and zero-shot baselines embed text with."""
    baseline_training: BaselineTraining | None = None
    """Training data of the cheap baselines and of the leakage check."""
    label_descriptions: dict[str, str] = Field(default_factory=dict)
    dataset: EvalDataset
    metrics: list[str] = Field(min_length=1)
    average: Literal["macro", "micro", "weighted"]
    generation: Generation
    thresholds: dict[str, float | Gate]
    output_uri: Uri | None = None
    gpus: int
    benchmarks: list[Benchmark] = Field(default_factory=list)
    """lm-evaluation-harness tasks and custom multiple-choice tasks, scored on the model and
    on `baseline`."""
    benchmark_data: BenchmarkData | None = None
    """The prepared datasets cache the harness tasks load from, offline."""
    tracking: Tracking | None = None


def trainer_config_for(
    name: str, namespace: str, spec: FinetuneJobSpec, uid: str | None = None,
    strategy: Literal["ddp", "fsdp"] | None = None,
) -> TrainerConfig:
    """The trainer's config for a validated FinetuneJob spec (`uid`: the FinetuneJob's).
    `strategy` is the planner's resolution of resources.strategy auto; an explicit ddp or
    fsdp in the spec wins."""
    hyper = spec.hyperparameters
    # Preference pairs are padded, never packed (chosen and rejected share their prompt).
    packing = hyper.packing if hyper.packing is not None else (
        spec.model.task == "causal-lm" and spec.method.type != "dpo")
    return TrainerConfig(
        job_name=name,
        namespace=namespace,
        job_uid=uid,
        model=TrainerModel(
            uri=spec.model.uri, task=spec.model.task, num_labels=spec.model.num_labels
        ),
        dataset=spec.dataset,
        # dpo: method.dpo with its defaults written out, so the trainer never guesses.
        method=spec.method.model_copy(update={"dpo": spec.method.dpo or DpoSpec()})
        if spec.method.type == "dpo" else spec.method,
        hyperparameters=ResolvedHyperparameters(**{
            **dict(hyper), "packing": packing,
            "learning_rate": hyper.learning_rate or default_learning_rate(spec.method)}),
        output=TrainerOutput(uri=spec.output.uri, merge_adapter=spec.output.merge_adapter,
                             overwrite=spec.output.overwrite, serving=_serving(spec)),
        checkpointing=spec.checkpointing,
        resources=TrainerResources(
            gpus=spec.resources.gpus, nodes=spec.resources.nodes,
            strategy=resolve_strategy(spec.resources.strategy, strategy),
            cpu_offload=spec.resources.cpu_offload,
        ),
        tracking=spec.tracking,
    )


def resolve_serving_kind(spec: FinetuneJobSpec) -> ServingKind:
    """output.serving.kind, or when unset: LLMInferenceService for an adapter without a merged
    copy (vLLM loads it on the base model), InferenceService for a whole model."""
    kind = spec.output.serving.kind if spec.output.serving else None
    if kind:
        return kind
    adapter_only = spec.method.trains_adapter and not spec.output.merge_adapter
    return "LLMInferenceService" if adapter_only and spec.model.task == "causal-lm" \
        else "InferenceService"


def _serving(spec: FinetuneJobSpec) -> TrainerServing | None:
    if spec.output.serving is None:
        return None
    return TrainerServing(kind=resolve_serving_kind(spec), gpus=spec.resources.gpus,
                          gpu_resource_name=spec.resources.gpu_resource_name)


def resolve_strategy(
    requested: Literal["auto", "ddp", "fsdp"], planned: Literal["ddp", "fsdp"] | None
) -> Literal["ddp", "fsdp"]:
    """The spec's ddp/fsdp as given; auto as the planner chose, ddp when it could not plan."""
    if requested != "auto":
        return requested
    return planned or "ddp"


def eval_config_for(
    name: str,
    namespace: str,
    spec: EvalJobSpec,
    *,
    model: EvalModelConfig,
    task: Task,
    baseline: EvalModelConfig | None,
    encoder: EvalModelConfig | None = None,
    training: BaselineTraining | None = None,
    from_finetune_job: bool = False,
) -> EvalConfig:
    """The evaluator's config; `model`, `task`, `baseline`, the base `encoder` and the
    `training` data are resolved by the operator (from spec.model.uri, or from the referenced
    FinetuneJob's spec and result)."""
    return EvalConfig(
        baselines=resolve_baselines(spec, task, from_finetune_job),
        encoder=encoder,
        baseline_training=spec.baseline_training or training,
        label_descriptions=dict(spec.label_descriptions or {}),
        job_name=name,
        namespace=namespace,
        task=task,
        model=model,
        baseline=baseline,
        dataset=spec.dataset,
        metrics=list(spec.metrics or TASK_METRICS[task]),
        average=spec.average,
        generation=spec.generation,
        thresholds=spec.thresholds,
        output_uri=spec.output.uri if spec.output else None,
        gpus=spec.resources.gpus,
        benchmarks=list(spec.benchmarks or ()),
        benchmark_data=spec.benchmark_data,
        tracking=spec.tracking,
    )


def resolve_baselines(spec: EvalJobSpec, task: str, from_finetune_job: bool) -> list[str]:
    """The baselines to score: spec.baselines, or by default (with finetuneJobRef) every cheap
    baseline of the task; plus the second model: `chance`/`base` for the base model
    (compareBaseline), `model` for a baseline.uri the user named."""
    if spec.baselines is not None:
        names = list(spec.baselines)
    else:
        names = list(CHEAP_BASELINES[task]) if from_finetune_job else []
    own = "chance" if task == "sequence-classification" else "base"
    # Benchmarks are run against the base model: a FinetuneJob's base is scored as `base`.
    compare = spec.compare_baseline or (bool(spec.benchmarks) and from_finetune_job)
    if spec.baseline is not None:
        if own not in names:
            names.append("model")
    elif compare and own not in names:
        names.append(own)
    return names
