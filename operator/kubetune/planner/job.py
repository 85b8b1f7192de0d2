"""A FinetuneJob, planned: the operator's entry point for ResourcesFit and status.plan.

from kubetune.planner import plan_finetune_job, gpu_memory_bytes
capacity = gpu_memory_bytes(spec, settings.gpu_memory)          # may raise PlanInputError
plan = plan_finetune_job(spec, config_json, capacity)            # may raise PlanInputError
status["plan"] = plan.status_plan()
condition = ("ResourcesFit", plan.condition_status, plan.reason, plan.message)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubetune.planner.families import UnsupportedModel, build_layout
from kubetune.planner.fit import FitResult, check_fit, check_fit_auto
from kubetune.planner.layout import ModelLayout
from kubetune.planner.lora import UnknownTargetModules
from kubetune.planner.memory import Method, PlanRequest, Precision, Strategy
from kubetune.planner.quantity import QUANTITY_HINT, parse_quantity

if TYPE_CHECKING:  # the API package is only needed by callers that have a spec
    from kubetune.api import FinetuneJobSpec

DEFAULT_GPU_MEMORY = {"nvidia.com/gpu": "80Gi"}


class PlanInputError(ValueError):
    """A spec field the planner cannot use; `field` is its path, e.g. spec.resources.gpuMemory."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class JobPlan:
    layout: ModelLayout
    request: PlanRequest
    fit: FitResult

    @property
    def reason(self) -> str:
        return self.fit.reason  # Fits | DoesNotFit | Unknown

    @property
    def condition_status(self) -> str:
        return {True: "True", False: "False", None: "Unknown"}[self.fit.fits]

    @property
    def message(self) -> str:
        return self.fit.message

    @property
    def strategy(self) -> Strategy:
        """ddp or fsdp: the spec's, or what `auto` resolved to."""
        return self.fit.strategy

    def status_plan(self) -> dict[str, int | str]:
        """status.plan, camelCase as in the API."""
        plan: dict[str, int | str] = {
            "strategy": self.strategy.value,
            "parameters": self.layout.parameters,
            "trainableParameters": self.fit.estimate.trainable_parameters,
            "estimatedGpuMemoryBytes": self.fit.estimate.total,
        }
        if self.fit.capacity_bytes is not None:
            plan["gpuMemoryBytes"] = self.fit.capacity_bytes
        return plan


def plan_request(spec: FinetuneJobSpec) -> PlanRequest:
    """The planner's view of a validated FinetuneJob spec."""
    hp, method, resources = spec.hyperparameters, spec.method, spec.resources
    precision = Precision(hp.precision)
    if precision is Precision.AUTO:
        # As the trainer decides: bf16 on GPUs, fp32 on CPU.
        precision = Precision.BF16 if resources.gpus > 0 else Precision.FP32
    dpo = method.type == "dpo"
    return PlanRequest(
        # DPO trains what its adapter names; the pairs and the reference are priced below.
        method=Method((method.dpo.adapter if method.dpo else "lora") if dpo else method.type),
        preference=dpo,
        precision=precision,
        optimizer=hp.optimizer,
        gradient_checkpointing=hp.gradient_checkpointing,
        batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        seq_length=hp.max_seq_length,
        gpus=resources.gpus,
        nodes=resources.nodes,
        lora_r=method.lora.r,
        lora_target_modules=tuple(method.lora.target_modules),
        lora_dropout=method.lora.dropout,
        # auto is priced as ddp first; plan_finetune_job decides.
        strategy=Strategy.FSDP if resources.strategy == "fsdp" else Strategy.DDP,
        cpu_offload=resources.cpu_offload,
    )


def gpu_memory_bytes(
    spec: FinetuneJobSpec,
    defaults: Mapping[str, str] = DEFAULT_GPU_MEMORY,
    override: str | None = None,
) -> int | None:
    """Memory of one GPU: `override`, else spec.resources.gpuMemory, else the default for
    spec.resources.gpuResourceName. On CPU (gpus: 0) the pod's memory limit, if set."""
    resources = spec.resources
    if resources.gpus == 0:
        return _quantity("spec.resources.memory", resources.memory) if resources.memory else None
    if override is not None:
        return _quantity("--gpu-memory", override)
    if resources.gpu_memory:
        return _quantity("spec.resources.gpuMemory", resources.gpu_memory)
    default = defaults.get(resources.gpu_resource_name)
    return _quantity(f"default GPU memory for {resources.gpu_resource_name}", default) if default else None


def _quantity(field: str, value: str) -> int:
    try:
        return parse_quantity(value)
    except ValueError as exc:
        raise PlanInputError(field, QUANTITY_HINT) from exc


def plan_finetune_job(
    spec: FinetuneJobSpec, config: Mapping[str, Any], capacity_bytes: int | None
) -> JobPlan:
    """Count, estimate and check the fit of a FinetuneJob against its model's config.json."""
    request = plan_request(spec)
    try:
        layout = build_layout(config, spec.model.task, spec.model.num_labels)
    except UnsupportedModel as exc:
        raise PlanInputError("spec.model.uri", str(exc)) from exc
    try:
        check = check_fit_auto if spec.resources.strategy == "auto" else check_fit
        fit = check(layout, request, capacity_bytes)
    except UnknownTargetModules as exc:
        raise PlanInputError("spec.method.lora.targetModules", str(exc)) from exc
    return JobPlan(layout, fit.request, fit)
