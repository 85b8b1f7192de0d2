"""FinetuneJob: finetune a base model on a dataset with LoRA, QLoRA or full training.

Field names, meanings and types are the contract of `shared/design/api.md`. Every rule that
involves more than one field is written twice: as a CEL rule for the API server (in
`json_schema_extra`) and as a model validator here, so both reject the same specs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import IMMUTABLE, SpecModel, StatusModel, cel, raise_rule_problems
from .common import (
    Condition,
    DatasetFormat,
    PodResources,
    ResolvedRuntime,
    RuntimeRef,
    SecretRef,
    ShortString,
    Task,
    Tracking,
)
from .kube_syntax import Image, QueueName
from .metrics import ALL_METRICS, ThresholdSpec, metric_problems
from .uri import Uri


class ModelSpec(SpecModel):
    """The base model to finetune."""

    uri: Uri
    """Where the base model is: hf://ORG/NAME[@REV], s3://, pvc:// or file://."""
    task: Task = "causal-lm"
    """causal-lm (text generation) or sequence-classification."""
    num_labels: int | None = Field(None, ge=2, le=100_000)
    """Number of classes (sequence-classification only); inferred from the data when unset."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the model's location (HF_TOKEN, AWS_*)."""

    @model_validator(mode="after")
    def _num_labels_only_for_classification(self) -> ModelSpec:
        if self.num_labels is not None and self.task != "sequence-classification":
            raise ValueError("numLabels may only be set when task is sequence-classification")
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.numLabels) || self.task == 'sequence-classification'",
                    "numLabels may only be set when task is sequence-classification",
                )
            ]
        }
    }


class ValidationSplit(SpecModel):
    """Held-out data for evaluation during training: a separate set or a share of training."""

    uri: Uri | None = None
    """A separate validation set."""
    split_ratio: float | None = Field(None, gt=0, le=0.5)
    """Share of the training set held out for validation, in (0, 0.5]."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ValidationSplit:
        if (self.uri is None) == (self.split_ratio is None):
            raise ValueError("set exactly one of uri and splitRatio")
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("has(self.uri) != has(self.splitRatio)", "set exactly one of uri and splitRatio")
            ]
        }
    }


class Cleaning(SpecModel):
    """Data cleaning applied before training."""

    drop_empty: bool = True
    """Drop rows whose text fields are empty or whitespace."""
    drop_duplicates: bool = True
    """Drop exact duplicates after whitespace normalisation."""
    max_tokens: int | None = Field(None, ge=1, le=1_048_576)
    """Examples longer than this many tokens are truncated or dropped (default: maxSeqLength)."""
    over_length: Literal["truncate", "drop"] = "truncate"
    """What happens to examples longer than maxTokens."""


class DatasetSpec(SpecModel):
    """The training data."""

    uri: Uri
    """The training set: .jsonl, .json, .csv or .parquet."""
    format: DatasetFormat | None = None
    """chat, instruction, completion, text, classification or feedback (user feedback:
    prompt, response, rating, optional correction, or chosen/rejected pairs); detected from the
    columns when unset."""
    fields: dict[str, ShortString] = Field(default_factory=dict, max_length=16)
    """Column mapping from the format's field names to the file's (e.g. {text: body})."""
    validation: ValidationSplit | None = None
    """Held-out data for evaluation during training."""
    cleaning: Cleaning = Field(default_factory=Cleaning)
    """Cleaning rules."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the dataset's location."""


class LoraSpec(SpecModel):
    """LoRA adapter settings (also used by QLoRA)."""

    r: int = Field(16, ge=1, le=1024)
    """Rank of the adapter matrices."""
    alpha: float = Field(32, gt=0, le=4096)
    """Scaling numerator; the update is scaled by alpha / r."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=lambda: ["all-linear"], min_length=1, max_length=64
    )
    """Module names to adapt, or ["all-linear"] for every linear layer but the output head."""


class DpoSpec(SpecModel):
    """Direct Preference Optimization (Rafailov et al. 2023) on preference pairs."""

    beta: float = Field(0.1, gt=0, le=100)
    """Strength of the pull towards the reference (base) model: larger keeps the policy closer."""
    adapter: Literal["lora", "full"] = "lora"
    """What is trained: lora (adapters configured by method.lora; the reference is the base
    with the adapters disabled, no second copy) or full (all weights; a frozen copy of the base
    is the reference)."""


class MethodSpec(SpecModel):
    """How the model is finetuned."""

    type: Literal["lora", "qlora", "full", "dpo"] = "lora"
    """lora (adapters on a 16-bit model), qlora (adapters on a 4-bit model, GPU only), full, or
    dpo (preference optimization on chosen/rejected pairs; needs dataset.format feedback)."""
    lora: LoraSpec = Field(default_factory=LoraSpec)
    """Adapter settings for lora and qlora, and for dpo with adapter lora."""
    dpo: DpoSpec | None = None
    """DPO settings (method.type dpo only; default beta 0.1, adapter lora)."""
    head_init: Literal["random", "linear-probe"] | None = None
    """task sequence-classification only: how the classification head starts. random (unset):
    as the checkpoint's class initialises it. linear-probe (LP-FT, Kumar et al., ICLR 2022): a
    logistic regression is fitted on the frozen model's features of the training set (what
    the head's output layer sees) and copied into the head, then training updates everything;
    the finetune starts from the probe's accuracy and distorts the pretrained encoder less.
    Costs one forward pass over the training set; not with resources.strategy fsdp."""

    @model_validator(mode="after")
    def _dpo_only_for_dpo(self) -> MethodSpec:
        if self.dpo is not None and self.type != "dpo":
            raise ValueError("dpo may only be set when type is dpo")
        return self

    @property
    def trains_adapter(self) -> bool:
        """Whether the output is an adapter (lora, qlora, dpo with adapter lora)."""
        return self.type in ("lora", "qlora") or (
            self.type == "dpo" and (self.dpo or DpoSpec()).adapter == "lora")

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("!has(self.dpo) || (has(self.type) && self.type == 'dpo')",
                    "dpo may only be set when type is dpo")
            ]
        }
    }


class EarlyStopping(SpecModel):
    """Stop when the validation metric stops improving."""

    patience: int = Field(3, ge=1, le=1000)
    """Evaluations without improvement before stopping."""
    metric: Literal["evalLoss", "evalAccuracy"] = "evalLoss"
    """Metric watched: evalLoss (lower is better) or evalAccuracy (classification)."""
    min_delta: float = Field(0.0, ge=0, le=1e6)
    """Smallest change that counts as an improvement."""


OnOffAuto = Literal["auto", "on", "off"]


class FastPath(SpecModel):
    """GPU kernels and optimizations; each is used when the machine allows it (auto), forced
    (on: the run fails with an input error when it cannot be had) or left out (off). What ran
    is reported in status.result.fastPath."""

    attention: Literal["auto", "sdpa", "flash_attention_2", "flash_attention_3",
                       "flex_attention"] = "auto"
    """Attention kernel (transformers' attn_implementation). auto: flash_attention_3 on Hopper
    GPUs, else flash_attention_2 (both when the flash-attn package is installed), else
    flex_attention on GPUs (packed rows padded to maxSeqLength: one compiled shape), else sdpa.
    flash and flex attend packed rows variable-length (per example, no (L x L) mask); sdpa
    gets a block-diagonal mask."""
    liger: OnOffAuto = "auto"
    """Liger kernels (liger-kernel package, GPU, causal-lm): fused linear cross-entropy (no
    full-vocabulary logits), RMSNorm, SwiGLU, RoPE. auto: on where installed and the model type
    is supported."""
    fused_optimizer: OnOffAuto = "auto"
    """AdamW's fused kernel (fused=True). auto: on GPUs; otherwise the foreach implementation."""
    compile: OnOffAuto = "auto"
    """torch.compile the model. auto: off (compiling costs minutes and recompiles when batch
    shapes change); on: compile."""


DEFAULT_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5, "dpo-lora": 5e-5,
                         "dpo-full": 1e-6}
"""hyperparameters.learningRate when unset, by method.type (dpo: by method.dpo.adapter)."""


def default_learning_rate(method: MethodSpec) -> float:
    if method.type == "dpo":
        return DEFAULT_LEARNING_RATE[f"dpo-{(method.dpo or DpoSpec()).adapter}"]
    return DEFAULT_LEARNING_RATE[method.type]


class Hyperparameters(SpecModel):
    """Training hyperparameters."""

    epochs: int = Field(3, ge=0, le=1000)
    """Passes over the training set (0: maxSteps decides)."""
    max_steps: int = Field(0, ge=0, le=10_000_000)
    """Optimizer steps to run; 0: epochs decide."""
    learning_rate: float | None = Field(None, gt=0, le=1)
    """Peak learning rate; default by method: 2e-4 for lora and qlora, 2e-5 for full (a
    LoRA-sized rate overwrites a pretrained model's weights in a full finetune); dpo: 5e-5
    with adapter lora, 1e-6 with adapter full."""
    batch_size: int = Field(8, ge=1, le=4096)
    """Examples (or packed sequences) per device per step."""
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    """Micro-batches accumulated per optimizer step."""
    max_seq_length: int = Field(2048, ge=8, le=1_048_576)
    """Tokens per sequence."""
    packing: bool | None = None
    """Pack several examples into one sequence (causal-lm only; default true there)."""
    lr_scheduler: Literal["linear", "cosine", "constant"] = "cosine"
    """Learning-rate schedule after warmup."""
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    """Share of steps spent warming the learning rate up."""
    weight_decay: float = Field(0.0, ge=0, le=1)
    """AdamW weight decay."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Compute precision; auto: bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 30% slower."""
    seed: int = Field(42, ge=0, le=4_294_967_295)
    """Seed for data order, splits and initialisation."""
    eval_every_steps: int = Field(100, ge=0, le=10_000_000)
    """Evaluate on the validation set every this many steps; 0: once per epoch."""
    early_stopping: EarlyStopping | None = None
    """Stop early when the validation metric stops improving."""
    optimizer: Literal["adamw", "adamw-8bit"] = "adamw"
    """Optimizer; adamw-8bit (bitsandbytes, GPU only) keeps optimizer states in 8 bits."""
    fast_path: FastPath = Field(default_factory=FastPath)
    """GPU kernels and optimizations (attention kernel, Liger, fused AdamW, torch.compile)."""

    @model_validator(mode="after")
    def _some_stopping_rule(self) -> Hyperparameters:
        if self.epochs == 0 and self.max_steps == 0:
            raise ValueError("epochs and maxSteps must not both be 0")
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("self.epochs > 0 || self.maxSteps > 0", "epochs and maxSteps must not both be 0")
            ]
        }
    }


class FinetuneResources(PodResources):
    """GPUs and placement of the training pods."""

    nodes: int = Field(1, ge=1, le=256)
    """Nodes (pods); more than 1 runs multi-node data-parallel training."""
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    """How the GPUs share the model: ddp (a full replica on every GPU), fsdp (weights, gradients
    and optimizer state sharded across all GPUs of all nodes, FSDP2), or auto (ddp when the
    planner says it fits, else fsdp)."""
    cpu_offload: bool = False
    """fsdp only: keep the sharded weights, gradients and optimizer state in host memory and
    run the optimizer step on the CPU (FSDP2's CPUOffloadPolicy); GPUs then hold only the
    gathered blocks and activations. Much slower; for models whose state does not fit the
    GPUs even sharded. Give the pods memory for it (resources.memory)."""


class ServingSpec(SpecModel):
    """A KServe manifest for the finetuned model, written next to it (serving.yaml)."""

    kind: Literal["InferenceService", "LLMInferenceService"] | None = None
    """InferenceService (serving.kserve.io/v1beta1, huggingface runtime) serves a whole model:
    method full, or lora/qlora with mergeAdapter; LLMInferenceService (vLLM, causal-lm)
    serves the base model with the LoRA adapter. Unset: LLMInferenceService for an adapter
    without a merged copy, else InferenceService."""
    create: bool = False
    """Also create that object in the job's namespace once training succeeded and the
    evaluation (spec.evaluation) Passed; status.serving says what happened. Needs
    spec.evaluation and kind, the chart value serving.create (the operator's RBAC on KServe's
    resources), and the requester's own permission to create that kind: kubetune creates
    nothing its user could not."""


class OutputSpec(SpecModel):
    """Where the finetuned model goes."""

    uri: Uri
    """Folder for the adapter, merged model, checkpoints, data report and model card."""
    merge_adapter: bool = False
    """Also write the base model with the adapter merged in (under merged/)."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the output location."""
    overwrite: bool = False
    """true: start clean when checkpoints of another FinetuneJob (another uid, e.g. an earlier
    job of the same name) are under uri, deleting them; false: fail with OutputInUse."""
    serving: ServingSpec | None = None
    """Write a KServe InferenceService or LLMInferenceService manifest next to the model."""


class Checkpointing(SpecModel):
    """Checkpoints for resuming after preemption, suspension or a retry."""

    every_steps: int = Field(200, ge=0, le=10_000_000)
    """Save every this many steps (0: only on SIGTERM and at the end)."""
    keep: int = Field(2, ge=1, le=100)
    """Newest checkpoints kept."""


class EvalDataset(SpecModel):
    """A dataset to score a model on."""

    uri: Uri
    """The evaluation set."""
    format: DatasetFormat | None = None
    """Format of the file; detected when unset."""
    fields: dict[str, ShortString] = Field(default_factory=dict, max_length=16)
    """Column mapping."""
    limit: int = Field(0, ge=0, le=10_000_000)
    """Score at most this many examples (0: all)."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the dataset's location."""


class Evaluation(SpecModel):
    """An EvalJob created when training succeeds."""

    dataset: EvalDataset
    """The test set."""
    compare_baseline: bool = True
    """Also score the base model and report the difference."""
    metrics: list[Literal[ALL_METRICS]] | None = Field(None, max_length=16)  # type: ignore[valid-type]
    """Metrics to compute (default: all of the task's)."""
    thresholds: dict[str, ThresholdSpec] = Field(default_factory=dict, max_length=16)
    """Per metric: a minimum value (maximum for loss and perplexity), or {value, beatBaseline};
    all must hold for Passed=True."""


HEAD_INIT_NEEDS_CLASSIFICATION = ("method.headInit linear-probe needs model.task "
                                  "sequence-classification (a probe fits a classification head)")
HEAD_INIT_NOT_FSDP = ("method.headInit linear-probe is not supported with resources.strategy "
                      "fsdp (the head is sharded); use ddp")
# accelerate shards with FSDP only across accelerators (on CPU it falls back to DDP).
FSDP_NEEDS_GPUS = "resources.strategy fsdp needs GPUs: resources.gpus must be > 0"
# 4-bit weights need a matching quant storage dtype to shard; not wired up yet.
FSDP_NOT_QLORA = "resources.strategy fsdp is for method full or lora, not qlora"
# DPO's reference forward (adapters disabled, or a frozen copy) is not wired up under FSDP.
FSDP_NOT_DPO = "resources.strategy fsdp is for method full or lora, not dpo"
DPO_NEEDS_FEEDBACK = ("method.type dpo needs preference pairs: dataset.format must be feedback "
                      "(chosen/rejected, or rated responses and corrections)")
FEEDBACK_NOT_CLASSIFICATION = "dataset.format feedback needs model.task causal-lm"
DPO_NOT_CLASSIFICATION = "method.type dpo needs model.task causal-lm"
DPO_NOT_PACKING = "hyperparameters.packing must not be true for method.type dpo (pairs are padded)"
OFFLOAD_NEEDS_FSDP = "resources.cpuOffload needs resources.strategy fsdp"
SERVING_NEEDS_WHOLE_MODEL = (
    "output.serving: an adapter without a merged copy (method lora, qlora or dpo with adapter "
    "lora, mergeAdapter false) is served only by kind LLMInferenceService with model.task "
    "causal-lm; set output.mergeAdapter true to serve it with kind InferenceService")
SERVING_LLM_CAUSAL = "output.serving.kind LLMInferenceService (vLLM) needs model.task causal-lm"
# Created only when an evaluation says the model is good enough; the kind is what the
# requester's permission is checked against at apply time, so it cannot be left to a default.
SERVING_CREATE_NEEDS_EVALUATION = "output.serving.create needs spec.evaluation (it waits for Passed)"
SERVING_CREATE_NEEDS_KIND = ("output.serving.create needs output.serving.kind (the requester's "
                             "permission to create that kind is checked when the job is applied)")


class FinetuneJobSpec(SpecModel):
    """What to finetune, on what data, how, and on which GPUs."""

    model: ModelSpec = Field(json_schema_extra={"x-kubernetes-validations": IMMUTABLE})
    """The base model."""
    dataset: DatasetSpec = Field(json_schema_extra={"x-kubernetes-validations": IMMUTABLE})
    """The training data."""
    method: MethodSpec = Field(
        default_factory=MethodSpec, json_schema_extra={"x-kubernetes-validations": IMMUTABLE}
    )
    """LoRA, QLoRA or full finetuning."""
    hyperparameters: Hyperparameters = Field(
        default_factory=Hyperparameters,
        json_schema_extra={"x-kubernetes-validations": IMMUTABLE},
    )
    """Training hyperparameters."""
    resources: FinetuneResources = Field(
        default_factory=FinetuneResources,
        json_schema_extra={"x-kubernetes-validations": IMMUTABLE},
    )
    """GPUs, nodes and placement."""
    output: OutputSpec = Field(json_schema_extra={"x-kubernetes-validations": IMMUTABLE})
    """Where the results go."""
    checkpointing: Checkpointing = Field(default_factory=Checkpointing)
    """Checkpoint frequency and retention."""
    evaluation: Evaluation | None = None
    """Evaluate the finetuned model with an EvalJob after training."""
    queue_name: QueueName | None = None
    """Kueue LocalQueue; sets the kueue.x-k8s.io/queue-name label on the Job, so it must be a
    DNS subdomain name of at most 63 characters."""
    suspend: bool = False
    """true: stop the pods and keep state (a checkpoint is saved); false again: resume."""
    backoff_limit: int = Field(2, ge=0, le=100)
    """Retries of a failed attempt, each resuming from the last checkpoint."""
    active_deadline_seconds: int | None = Field(None, ge=1, le=31_536_000)
    """Wall-clock limit of the training Job."""
    ttl_seconds_after_finished: int = Field(604_800, ge=0, le=31_536_000)
    """Child objects are removed this long after finishing; the FinetuneJob stays."""
    image: Image | None = None
    """Trainer image override (an image reference); default from the operator's configuration."""
    runtime_ref: RuntimeRef | None = None
    """Runtime template (ClusterFinetuneRuntime or FinetuneRuntime) whose image, placement, env,
    volumes and defaults apply; values set here win, except fields the runtime locks. Unset:
    the runtime marked default, if any."""
    tracking: Tracking | None = None
    """Experiment tracking (MLflow); the EvalJob of spec.evaluation logs to it too."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> FinetuneJobSpec:
        raise_rule_problems(finetune_spec_problems(self))
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "self.method.type != 'qlora' || self.resources.gpus > 0",
                    "method.type qlora needs GPUs: resources.gpus must be > 0",
                ),
                cel(
                    "!has(self.resources.strategy) || self.resources.strategy != 'fsdp'"
                    " || self.resources.gpus > 0",
                    FSDP_NEEDS_GPUS,
                ),
                cel(
                    "!has(self.resources.strategy) || self.resources.strategy != 'fsdp'"
                    " || self.method.type != 'qlora'",
                    FSDP_NOT_QLORA,
                ),
                cel(
                    "!has(self.resources.cpuOffload) || !self.resources.cpuOffload"
                    " || (has(self.resources.strategy) && self.resources.strategy == 'fsdp')",
                    OFFLOAD_NEEDS_FSDP,
                ),
                cel(
                    "!(has(self.hyperparameters.packing) && self.hyperparameters.packing"
                    " && self.model.task == 'sequence-classification')",
                    "hyperparameters.packing must not be true for task sequence-classification",
                ),
                cel(
                    "!has(self.method.type) || self.method.type != 'dpo'"
                    " || (has(self.dataset.format) && self.dataset.format == 'feedback')",
                    DPO_NEEDS_FEEDBACK,
                ),
                cel("!has(self.method.type) || self.method.type != 'dpo' || !has(self.model.task)"
                    " || self.model.task == 'causal-lm'", DPO_NOT_CLASSIFICATION),
                cel(
                    "!has(self.method.type) || self.method.type != 'dpo'"
                    " || !has(self.hyperparameters.packing) || !self.hyperparameters.packing",
                    DPO_NOT_PACKING,
                ),
                cel(
                    "!has(self.dataset.format) || self.dataset.format != 'feedback'"
                    " || !has(self.model.task) || self.model.task == 'causal-lm'",
                    FEEDBACK_NOT_CLASSIFICATION,
                ),
                cel(
                    "!has(self.resources.strategy) || self.resources.strategy != 'fsdp'"
                    " || !has(self.method.type) || self.method.type != 'dpo'",
                    FSDP_NOT_DPO,
                ),
                cel(
                    "!has(self.method.headInit) || self.method.headInit != 'linear-probe'"
                    " || self.model.task == 'sequence-classification'",
                    HEAD_INIT_NEEDS_CLASSIFICATION,
                ),
                cel(
                    "!has(self.method.headInit) || self.method.headInit != 'linear-probe'"
                    " || !has(self.resources.strategy) || self.resources.strategy != 'fsdp'",
                    HEAD_INIT_NOT_FSDP,
                ),
                cel(
                    "!has(self.output.serving) || self.method.type == 'full'"
                    " || (self.method.type == 'dpo' && has(self.method.dpo)"
                    " && has(self.method.dpo.adapter) && self.method.dpo.adapter == 'full')"
                    " || (has(self.output.mergeAdapter) && self.output.mergeAdapter)"
                    " || ((!has(self.model.task) || self.model.task == 'causal-lm')"
                    " && (!has(self.output.serving.kind)"
                    " || self.output.serving.kind == 'LLMInferenceService'))",
                    SERVING_NEEDS_WHOLE_MODEL,
                ),
                cel(
                    "!has(self.output.serving) || !has(self.output.serving.kind)"
                    " || self.output.serving.kind != 'LLMInferenceService'"
                    " || !has(self.model.task) || self.model.task == 'causal-lm'",
                    SERVING_LLM_CAUSAL,
                ),
                cel(
                    "!has(self.output.serving) || !has(self.output.serving.create)"
                    " || !self.output.serving.create || has(self.evaluation)",
                    SERVING_CREATE_NEEDS_EVALUATION,
                ),
                cel(
                    "!has(self.output.serving) || !has(self.output.serving.create)"
                    " || !self.output.serving.create || has(self.output.serving.kind)",
                    SERVING_CREATE_NEEDS_KIND,
                ),
            ]
        }
    }


def finetune_spec_problems(spec: FinetuneJobSpec) -> list[tuple[str, str]]:
    """Rules across sections of the spec, as (path below spec, what must hold); the first two
    are mirrored by the CEL rules above."""
    problems = []
    if spec.method.type == "qlora" and spec.resources.gpus == 0:
        problems.append(("", "method.type qlora needs GPUs: resources.gpus must be > 0"))
    if spec.resources.strategy == "fsdp" and spec.resources.gpus == 0:
        problems.append(("", FSDP_NEEDS_GPUS))
    if spec.resources.strategy == "fsdp" and spec.method.type == "qlora":
        problems.append(("", FSDP_NOT_QLORA))
    if spec.resources.cpu_offload and spec.resources.strategy != "fsdp":
        problems.append(("", OFFLOAD_NEEDS_FSDP))
    if spec.hyperparameters.packing and spec.model.task == "sequence-classification":
        problems.append(
            ("", "hyperparameters.packing must not be true for task sequence-classification")
        )
    if spec.method.type == "dpo" and spec.dataset.format != "feedback":
        problems.append(("", DPO_NEEDS_FEEDBACK))
    if spec.method.type == "dpo" and spec.model.task != "causal-lm":
        problems.append(("", DPO_NOT_CLASSIFICATION))
    if spec.method.type == "dpo" and spec.hyperparameters.packing:
        problems.append(("", DPO_NOT_PACKING))
    if spec.dataset.format == "feedback" and spec.model.task != "causal-lm":
        problems.append(("", FEEDBACK_NOT_CLASSIFICATION))
    if spec.resources.strategy == "fsdp" and spec.method.type == "dpo":
        problems.append(("", FSDP_NOT_DPO))
    if spec.method.head_init == "linear-probe" and spec.model.task != "sequence-classification":
        problems.append(("", HEAD_INIT_NEEDS_CLASSIFICATION))
    if spec.method.head_init == "linear-probe" and spec.resources.strategy == "fsdp":
        problems.append(("", HEAD_INIT_NOT_FSDP))
    serving = spec.output.serving
    adapter_only = spec.method.trains_adapter and not spec.output.merge_adapter
    if serving and adapter_only and not (
            spec.model.task == "causal-lm" and serving.kind in (None, "LLMInferenceService")):
        problems.append(("", SERVING_NEEDS_WHOLE_MODEL))
    if serving and serving.kind == "LLMInferenceService" and spec.model.task != "causal-lm":
        problems.append(("", SERVING_LLM_CAUSAL))
    if serving and serving.create and spec.evaluation is None:
        problems.append(("", SERVING_CREATE_NEEDS_EVALUATION))
    if serving and serving.create and serving.kind is None:
        problems.append(("", SERVING_CREATE_NEEDS_KIND))
    if spec.evaluation:
        problems += metric_problems(
            spec.model.task, spec.evaluation.metrics, spec.evaluation.thresholds, "evaluation"
        )
    return problems


# ---------------------------------------------------------------------------------------------
# Status: written by the operator only.

Phase = Literal["Pending", "Queued", "Running", "Succeeded", "Failed", "Suspended"]


class Plan(StatusModel):
    """The memory planner's estimate for this job."""

    parameters: int | None = Field(None, ge=0)
    """Parameters of the model."""
    trainable_parameters: int | None = Field(None, ge=0)
    """Parameters updated by training (adapter and head for LoRA)."""
    estimated_gpu_memory_bytes: int | None = Field(None, ge=0)
    """Estimated peak memory per GPU."""
    gpu_memory_bytes: int | None = Field(None, ge=0)
    """Memory of one GPU."""
    strategy: Literal["ddp", "fsdp"] | None = None
    """How the GPUs share the model: resources.strategy, or what auto resolved to."""


class Plateau(StatusModel):
    """The eval metric has stopped improving meaningfully: no evaluation since `sinceStep`
    beat that step's value by more than 1% of it, for `evals` evaluations."""

    metric: str | None = Field(None, max_length=64)
    """The metric watched: earlyStopping.metric, else evalLoss (the one that picks the kept
    weights)."""
    since_step: int | None = Field(None, ge=0)
    """The step of the last meaningful improvement."""
    evals: int | None = Field(None, ge=0)
    """Evaluations since then."""
    value: float | None = None
    """The metric at sinceStep."""
    best: float | None = None
    """The best value since then (sinceStep's included)."""
    latest: float | None = None
    """The latest evaluation's value."""


class TrainingWarning(StatusModel):
    """A training-health warning the trainer raised while running (e.g. Overfitting)."""

    reason: str = Field(max_length=64)
    message: str = Field("", max_length=1024)


class Progress(StatusModel):
    """Training progress reported by the trainer."""

    step: int | None = Field(None, ge=0)
    total_steps: int | None = Field(None, ge=0)
    epoch: float | None = Field(None, ge=0)
    percent: int | None = Field(None, ge=0, le=100)
    train_loss: float | None = None
    eval_loss: float | None = None
    tokens_per_second: float | None = Field(None, ge=0)
    eta_seconds: int | None = Field(None, ge=0)
    reward_accuracy: float | None = Field(None, ge=0, le=1)
    """DPO: share of training pairs whose chosen response gets the higher implicit reward
    (smoothed over steps)."""
    reward_margin: float | None = None
    """DPO: mean implicit reward of chosen minus rejected responses (smoothed over steps)."""
    last_update_time: str | None = Field(None, max_length=64)
    plateau: Plateau | None = None
    """Set while the eval metric is on a plateau (also the Plateau condition)."""
    warnings: list[TrainingWarning] | None = Field(None, max_length=8)
    """Training-health warnings so far (Overfitting): the conditions of the same reasons are
    raised from these while the job runs."""


class CheckpointStatus(StatusModel):
    """The newest checkpoint."""

    uri: str | None = Field(None, max_length=2048)
    step: int | None = Field(None, ge=0)
    time: str | None = Field(None, max_length=64)


class FastPathReport(StatusModel):
    """The kernels and optimizations a training run used, as the trainer reported them."""

    attention: str | None = Field(None, max_length=64)
    """The attention implementation the model ran (sdpa, flash_attention_2, ...)."""
    packed_attention: Literal["varlen", "mask"] | None = None
    """Packed rows: varlen (each example attends within itself, no mask tensor) or mask (a
    block-diagonal (L x L) mask); unset without packing."""
    liger: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=16)
    """Liger kernels applied (empty: none)."""
    optimizer: str | None = Field(None, max_length=64)
    """The optimizer implementation: adamw-fused, adamw-foreach or adamw-8bit."""
    compiled: bool | None = None
    """The model ran under torch.compile."""
    precision: str | None = Field(None, max_length=16)
    """Autocast precision: bf16, fp16 or fp32."""
    notes: list[Annotated[str, Field(max_length=256)]] | None = Field(None, max_length=16)
    """Why an automatic choice fell back (e.g. no GPU, package not installed)."""


class TrainingResult(StatusModel):
    """What a successful run produced."""

    adapter_uri: str | None = Field(None, max_length=2048)
    model_uri: str | None = Field(None, max_length=2048)
    train_loss: float | None = None
    eval_loss: float | None = None
    eval_accuracy: float | None = None
    reward_accuracy: float | None = Field(None, ge=0, le=1)
    """DPO: share of training pairs whose chosen response gets the higher implicit reward."""
    reward_margin: float | None = None
    """DPO: mean implicit reward margin, chosen minus rejected."""
    eval_reward_accuracy: float | None = Field(None, ge=0, le=1)
    """DPO: reward accuracy on the validation pairs at the kept step."""
    kept_step: int | None = Field(None, ge=0)
    """The step whose weights were saved: the best evaluation's (evalLoss, or
    earlyStopping.metric), or the last step without evaluation."""
    stopped_early: bool | None = None
    """Early stopping ended training before its planned steps."""
    plateau: Plateau | None = None
    """The plateau the eval metric ended on, if it did."""
    fast_path: FastPathReport | None = None
    """Which kernels and optimizations the trainer actually ran (hyperparameters.fastPath)."""
    base_model_revision: str | None = Field(None, max_length=255)
    """The commit of the base model training loaded (what the hub resolved model.uri's
    revision to); unset when the model did not come from a hub snapshot."""
    serving_uri: str | None = Field(None, max_length=2048)
    """The KServe manifest written next to the model (output.serving)."""


class Failure(StatusModel):
    """Why the job failed, and what to change."""

    reason: str = Field(max_length=64)
    message: str = Field("", max_length=4096)
    hint: str = Field("", max_length=1024)


ServingReason = Literal["Created", "WaitingForEvaluation", "EvaluationNotPassed", "Disabled",
                        "KServeMissing", "Forbidden", "NameTaken", "Invalid"]


class ServingStatus(StatusModel):
    """What became of output.serving.create."""

    kind: str = Field(max_length=64)
    name: str = Field(max_length=253)
    reason: ServingReason
    """Created; WaitingForEvaluation (no Passed verdict yet); EvaluationNotPassed (never
    created for this job); Disabled (chart value serving.create is false); KServeMissing (the
    cluster does not serve that kind); Forbidden, Invalid (the API server refused it);
    NameTaken (an object of that name that this job did not create)."""
    message: str = Field("", max_length=1024)


class FinetuneJobStatus(StatusModel):
    """Observed state of a FinetuneJob; conditions are the source of truth."""

    observed_generation: int | None = Field(None, ge=0)
    phase: Phase | None = None
    """Summary of the conditions, for printer columns only."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    plan: Plan | None = None
    job_name: str | None = Field(None, max_length=63)
    attempts: int | None = Field(None, ge=0)
    start_time: str | None = Field(None, max_length=64)
    completion_time: str | None = Field(None, max_length=64)
    progress: Progress | None = None
    checkpoint: CheckpointStatus | None = None
    result: TrainingResult | None = None
    eval_job_name: str | None = Field(None, max_length=253)
    gpu_seconds: float | None = Field(None, ge=0)
    failure: Failure | None = None
    runtime: ResolvedRuntime | None = None
    """The runtime this job was resolved against (unchanged by later edits of the runtime)."""
    serving: ServingStatus | None = None
    """The KServe object of output.serving.create: created, or why not (yet)."""
