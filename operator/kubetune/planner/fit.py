"""Does a run fit its GPUs, by how much does it miss, and which single change would fit?

Every alternative is priced by the same `estimate_memory`, so "would fit" is a promise the
estimator keeps. Under DDP every GPU holds a full replica: adding GPUs spreads the batch,
never the weights, so "more GPUs" is never offered; sharding them (`strategy: fsdp`) is, when
the job has more than one GPU in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubetune.planner.layout import ModelLayout
from kubetune.planner.memory import (
    MemoryEstimate,
    Method,
    Optimizer,
    PlanRequest,
    Strategy,
    estimate_memory,
)
from kubetune.planner.quantity import format_gib

DDP_NOTE = "more GPUs do not lower memory per GPU: data parallel training keeps a full replica on every GPU"
FSDP_NOTE = (
    "fsdp splits weights, gradients and optimizer state over all GPUs of all nodes; activations "
    "and logits are per GPU"
)


def parallelism_note(request: PlanRequest) -> str:
    return FSDP_NOTE if request.shards > 1 else DDP_NOTE


def can_shard(request: PlanRequest) -> bool:
    """FSDP has something to split: more than one GPU in all, and weights it can shard
    (4-bit QLoRA weights are not wired up for it)."""
    return (request.gpus * request.nodes > 1 and request.method is not Method.QLORA
            and not request.preference)  # DPO's reference forward is not wired up for FSDP


@dataclass(frozen=True)
class Alternative:
    """One change to the spec, described in manifest terms, and what it would need."""

    description: str  # e.g. "gradientCheckpointing: true"
    changes: dict[str, object]  # spec fields (dotted camelCase paths) -> new values
    request: PlanRequest
    estimated_bytes: int


@dataclass(frozen=True)
class FitResult:
    estimate: MemoryEstimate
    capacity_bytes: int | None  # None: unknown, so the fit cannot be decided
    alternatives: list[Alternative] = field(default_factory=list)
    request: PlanRequest = field(default_factory=PlanRequest)

    @property
    def strategy(self) -> Strategy:
        return self.request.strategy

    @property
    def fits(self) -> bool | None:
        if self.capacity_bytes is None:
            return None
        return self.estimate.total <= self.capacity_bytes

    @property
    def shortfall_bytes(self) -> int:
        if self.capacity_bytes is None:
            return 0
        return max(0, self.estimate.total - self.capacity_bytes)

    @property
    def reason(self) -> str:
        """The ResourcesFit condition's reason."""
        return {True: "Fits", False: "DoesNotFit", None: "Unknown"}[self.fits]

    @property
    def message(self) -> str:
        need = f"~{format_gib(self.estimate.total)}"
        if self.capacity_bytes is None:
            return f"needs {need} per GPU; GPU memory unknown, set spec.resources.gpuMemory"
        capacity = format_gib(self.capacity_bytes)
        if self.fits:
            return f"needs {need} of {capacity} per GPU"
        text = f"needs {need}, {format_gib(self.shortfall_bytes)} more than the {capacity} per GPU"
        if self.alternatives:
            options = "; ".join(
                f"{a.description} (~{format_gib(a.estimated_bytes)})" for a in self.alternatives
            )
            return f"{text}; would fit: {options}"
        return f"{text}; no change the planner knows would fit ({self.note})"

    @property
    def note(self) -> str:
        return parallelism_note(self.request)


def check_fit(layout: ModelLayout, request: PlanRequest, capacity_bytes: int | None) -> FitResult:
    """The estimate against `capacity_bytes` per GPU, with alternatives when it misses."""
    estimate = estimate_memory(layout, request)
    result = FitResult(estimate, capacity_bytes, request=request)
    if result.fits is False:
        assert capacity_bytes is not None
        alternatives = _fitting(layout, _single_changes(request), capacity_bytes)
        if not alternatives:
            alternatives = _fitting(layout, _combined_changes(request), capacity_bytes)[:1]
        result = FitResult(estimate, capacity_bytes, alternatives, request)
    return result


def check_fit_auto(layout: ModelLayout, request: PlanRequest, capacity_bytes: int | None) -> FitResult:
    """`strategy: auto`: DDP when it fits (no communication beyond the gradient all-reduce),
    else FSDP when the job can shard; DDP when the fit is unknown."""
    ddp = check_fit(layout, request.with_changes(strategy=Strategy.DDP), capacity_bytes)
    if ddp.fits is not False or not can_shard(request):
        return ddp
    return check_fit(layout, request.with_changes(strategy=Strategy.FSDP), capacity_bytes)


_Candidate = tuple[str, dict[str, object], PlanRequest]


def _single_changes(request: PlanRequest) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    if request.strategy is Strategy.DDP and can_shard(request):
        # First: it trains the same model with the same batches, only slower to communicate.
        candidates.append(_fsdp(request))
    if request.method is Method.FULL:
        candidates.append(_method(request, Method.LORA))
    if request.method is not Method.QLORA and request.gpus > 0 and not request.preference:
        # bitsandbytes 4-bit needs a GPU; from full finetuning it is a second step down.
        candidates.append(_method(request, Method.QLORA))
    if not request.gradient_checkpointing:
        candidates.append(
            (
                "gradientCheckpointing: true",
                {"hyperparameters.gradientCheckpointing": True},
                request.with_changes(gradient_checkpointing=True),
            )
        )
    if request.optimizer is Optimizer.ADAMW and request.gpus > 0:
        candidates.append(
            (
                "optimizer: adamw-8bit",
                {"hyperparameters.optimizer": "adamw-8bit"},
                request.with_changes(optimizer=Optimizer.ADAMW_8BIT),
            )
        )
    candidates += _smaller_batches(request)
    if can_shard(request) and not request.cpu_offload:
        # Last: host-device copies every step and an optimizer step on the CPU are slow.
        candidates.append(_offload(request))
    return candidates


def _offload(request: PlanRequest) -> _Candidate:
    changes: dict[str, object] = {"resources.strategy": "fsdp", "resources.cpuOffload": True}
    if request.strategy is Strategy.FSDP:
        del changes["resources.strategy"]
    description = " + ".join(f"{k.split('.')[-1]}: {str(v).lower()}" for k, v in changes.items())
    return (description, changes,
            request.with_changes(strategy=Strategy.FSDP, cpu_offload=True))


def _fsdp(request: PlanRequest) -> _Candidate:
    return ("strategy: fsdp", {"resources.strategy": "fsdp"},
            request.with_changes(strategy=Strategy.FSDP))


def _method(request: PlanRequest, method: Method) -> _Candidate:
    if request.preference:  # DPO keeps its type; what it trains is method.dpo.adapter
        return (f"dpo adapter {method.value}", {"method.dpo.adapter": method.value},
                request.with_changes(method=method))
    return (f"method {method.value}", {"method.type": method.value}, request.with_changes(method=method))


def _smaller_batches(request: PlanRequest) -> list[_Candidate]:
    """Smaller micro-batches with more accumulation, the effective batch unchanged.

    Only divisors of the batch size keep batchSize * gradientAccumulationSteps exact; the
    largest that fits is the fastest, so they are tried from large to small.
    """
    b, ga = request.batch_size, request.gradient_accumulation_steps
    out = []
    for smaller in sorted((d for d in range(1, b) if b % d == 0), reverse=True):
        accumulation = ga * (b // smaller)
        out.append(
            (
                f"batchSize: {smaller} with gradientAccumulationSteps: {accumulation}",
                {
                    "hyperparameters.batchSize": smaller,
                    "hyperparameters.gradientAccumulationSteps": accumulation,
                },
                request.with_changes(batch_size=smaller, gradient_accumulation_steps=accumulation),
            )
        )
    return out


def _fitting(layout: ModelLayout, candidates: list[_Candidate], capacity_bytes: int) -> list[Alternative]:
    """Candidates that fit; of several batch sizes only the largest (the first) is kept."""
    found: list[Alternative] = []
    batch_found = False
    for description, changes, req in candidates:
        is_batch = "hyperparameters.batchSize" in changes
        if is_batch and batch_found:
            continue
        total = estimate_memory(layout, req).total
        if total <= capacity_bytes:
            found.append(Alternative(description, changes, req, total))
            batch_found = batch_found or is_batch
    return found


def _combined_changes(request: PlanRequest) -> list[_Candidate]:
    """Changes piled up, cheapest in speed and quality first, when no single one fits."""
    steps: list[tuple[str, dict[str, object], dict[str, object]]] = []
    if request.strategy is Strategy.DDP and can_shard(request):
        steps.append(("strategy: fsdp", {"resources.strategy": "fsdp"}, {"strategy": Strategy.FSDP}))
    steps.append(
        ("gradientCheckpointing: true", {"hyperparameters.gradientCheckpointing": True},
         {"gradient_checkpointing": True})
    )  # fmt: skip
    if request.gpus > 0:
        steps.append(
            ("optimizer: adamw-8bit", {"hyperparameters.optimizer": "adamw-8bit"},
             {"optimizer": Optimizer.ADAMW_8BIT})
        )  # fmt: skip
    if request.method is Method.FULL:
        description, changes, _ = _method(request, Method.LORA)
        steps.append((description, changes, {"method": Method.LORA}))
    if request.gpus > 0 and request.method is not Method.QLORA and not request.preference:
        if steps[0][0] == "strategy: fsdp":  # 4-bit weights do not shard: back to ddp
            steps.append(("method qlora with strategy: ddp",
                          {"method.type": "qlora", "resources.strategy": "ddp"},
                          {"method": Method.QLORA, "strategy": Strategy.DDP}))
        else:
            steps.append(("method qlora", {"method.type": "qlora"}, {"method": Method.QLORA}))
    b, ga = request.batch_size, request.gradient_accumulation_steps
    if b > 1:
        steps.append(
            (
                f"batchSize: 1 with gradientAccumulationSteps: {b * ga}",
                {"hyperparameters.batchSize": 1, "hyperparameters.gradientAccumulationSteps": b * ga},
                {"batch_size": 1, "gradient_accumulation_steps": b * ga},
            )
        )
    out: list[_Candidate] = []
    # Keyed by the spec fields a step sets, so "method qlora" replaces "method lora" (and
    # "strategy: fsdp", when it sets the strategy back).
    descriptions: dict[tuple[str, ...], str] = {}
    spec_changes: dict[str, object] = {}
    fields: dict[str, object] = {}
    for description, changes, request_fields in steps:
        for key in [k for k in descriptions if set(k) & set(changes)]:
            del descriptions[key]
        descriptions[tuple(changes)] = description
        spec_changes.update(changes)
        fields.update(request_fields)
        if len(descriptions) > 1:
            text = " + ".join(descriptions.values())
            out.append((text, dict(spec_changes), request.with_changes(**fields)))
    return out
