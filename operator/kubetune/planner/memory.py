"""Per-GPU memory of a finetuning run, itemised, from a ModelLayout and the job's settings.

Assumptions (each is a choice the trainer makes; change them together):
- Data parallel (DDP): every GPU holds a full replica of weights, gradients and optimizer
  states, so more GPUs never lower the per-GPU figure; `batch_size` is per device.
- FSDP (FSDP2 `fully_shard`, one unit per transformer block): weights, gradients and
  optimizer states are split evenly over every GPU of every node (Zhao et al. 2023, "PyTorch
  FSDP", arXiv:2304.11277); activations and logits are not. Each GPU also holds the gathered
  (unsharded) parameters of the unit it computes and of the one prefetched next, in the compute
  dtype, and in backward their gathered gradients before the reduce-scatter.
- FSDP with CPU offload (resources.cpuOffload): the shards of weights, gradients and optimizer
  states are in host memory (and the optimizer step runs there), so only the gathered units,
  activations and logits are on the GPU.
- Full finetuning in bf16/fp16 is mixed precision: fp32 master weights, fp32 gradients and an
  autocast copy of the weights in 16 bits (Hugging Face "Model training anatomy": 6 bytes of
  weights, 4 of gradients and 8 of AdamW states per parameter; 2 with 8-bit AdamW).
- LoRA loads the frozen base in the compute dtype and keeps the adapters (and the
  classification head copy) in fp32, as peft does by default.
- QLoRA stores the linear layers of the transformer blocks as 4-bit NF4 with double
  quantisation (Dettmers et al. 2023: 4 + 8/64 + 32/(64*256) bits per weight); embeddings,
  norms, biases and the output layer stay 16-bit.
- Attention runs through SDPA/flash kernels (transformers' default), which never keep the
  seq x seq score matrix.
- Preference optimisation (DPO) runs each pair's chosen and rejected sequence through the
  model in one batch, so activations and logits are those of 2 x batchSize sequences; the
  reference model is the base with the adapters disabled for LoRA (no extra weights: its
  forward runs without gradients, before the policy's, and keeps nothing), and a frozen copy
  of the base in the compute dtype for full finetuning.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

from kubetune.planner.layout import (
    Architecture,
    InputRole,
    ModelLayout,
    Task,
    Weight,
    WeightKind,
)
from kubetune.planner.lora import (
    ALL_LINEAR,
    adapted_expert_weights,
    adapted_linears,
    lora_trainable_parameters,
)

GIB = 2**30
# CUDA context, cuBLAS/cuDNN workspaces and NCCL buffers: 0.5-1 GiB on current GPUs.
CUDA_CONTEXT_BYTES = int(0.75 * GIB)
# The caching allocator rounds blocks up and fragments; a share of the tensor bytes.
ALLOCATOR_OVERHEAD = 0.10
NF4_BYTES_PER_WEIGHT = (4 + 8 / 64 + 32 / (64 * 256)) / 8


class Method(StrEnum):
    FULL = "full"
    LORA = "lora"
    QLORA = "qlora"


class Precision(StrEnum):
    AUTO = "auto"  # bf16, the trainer's choice on current GPUs
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


class Strategy(StrEnum):
    DDP = "ddp"
    FSDP = "fsdp"


class Optimizer(StrEnum):
    ADAMW = "adamw"  # two fp32 states per trainable parameter
    ADAMW_8BIT = "adamw-8bit"  # bitsandbytes: two 8-bit states (+ negligible block scales)


OPTIMIZER_BYTES = {Optimizer.ADAMW: 8, Optimizer.ADAMW_8BIT: 2}


@dataclass(frozen=True)
class PlanRequest:
    """The settings of a finetuning run that decide its memory (a FinetuneJob, distilled)."""

    method: Method = Method.LORA
    precision: Precision = Precision.AUTO
    optimizer: Optimizer = Optimizer.ADAMW
    gradient_checkpointing: bool = False
    batch_size: int = 8  # per device
    gradient_accumulation_steps: int = 1
    seq_length: int = 2048
    gpus: int = 1  # per node; 0 runs on CPU
    nodes: int = 1
    lora_r: int = 16
    lora_target_modules: tuple[str, ...] = (ALL_LINEAR,)
    lora_dropout: float = 0.05
    strategy: Strategy = Strategy.DDP
    preference: bool = False  # DPO: pairs of sequences, and a reference model
    cpu_offload: bool = False  # FSDP: sharded state in host memory (resources.cpuOffload)

    def __post_init__(self) -> None:
        # Accept plain strings from callers; store the enums.
        object.__setattr__(self, "method", Method(self.method))
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        object.__setattr__(self, "precision", Precision(self.precision))
        object.__setattr__(self, "optimizer", Optimizer(self.optimizer))
        object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))
        for name in ("batch_size", "gradient_accumulation_steps", "seq_length", "lora_r", "nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.gpus < 0:
            raise ValueError(f"gpus must be >= 0, got {self.gpus}")

    @property
    def shards(self) -> int:
        """GPUs the sharded state is split over: all of them, across nodes, under FSDP."""
        if self.strategy is Strategy.FSDP and self.gpus > 0:
            return self.gpus * self.nodes
        return 1

    @property
    def offloaded(self) -> bool:
        """Weights, gradients and optimizer state live in host memory, not on the GPUs."""
        return self.cpu_offload and self.strategy is Strategy.FSDP and self.gpus > 0

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps * max(self.gpus, 1) * self.nodes

    def with_changes(self, **changes: object) -> PlanRequest:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU (or per process on CPU), by what holds them."""

    weights: int
    gradients: int
    optimizer_states: int
    all_gather_buffers: int
    activations: int
    logits: int
    cuda_context: int
    allocator_overhead: int
    parameters: int = field(default=0, compare=False)
    trainable_parameters: int = field(default=0, compare=False)

    @property
    def total(self) -> int:
        return (
            self.weights
            + self.gradients
            + self.optimizer_states
            + self.all_gather_buffers
            + self.activations
            + self.logits
            + self.cuda_context
            + self.allocator_overhead
        )

    def items(self) -> dict[str, int]:
        """camelCase item -> bytes, for status and `kubetune plan -o json`."""
        d = asdict(self)
        d.pop("parameters")
        d.pop("trainable_parameters")
        return {_camel(k): v for k, v in d.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def compute_bytes(precision: Precision) -> int:
    return 4 if Precision(precision) is Precision.FP32 else 2


def trainable_parameters(layout: ModelLayout, request: PlanRequest) -> int:
    if request.method is Method.FULL:
        return layout.parameters
    return lora_trainable_parameters(layout, request.lora_r, request.lora_target_modules)


def estimate_memory(layout: ModelLayout, request: PlanRequest) -> MemoryEstimate:
    """Peak memory per GPU of one training step (forward, backward, optimizer step)."""
    a = compute_bytes(request.precision)
    mixed = a == 2
    params = layout.parameters
    trainable = trainable_parameters(layout, request)

    if request.method is Method.FULL:
        # fp32 master weights, plus their 16-bit autocast copies under mixed precision.
        weights = params * (4 + (2 if mixed else 0))
        if request.preference:
            weights += params * a  # the frozen reference copy
    else:
        # Frozen base in the compute dtype (QLoRA: 4-bit blocks) + fp32 adapters with their
        # autocast copies.
        weights = _frozen_base_bytes(layout, request, a) + trainable * (4 + (2 if mixed else 0))
    gradients = trainable * 4
    optimizer_states = trainable * OPTIMIZER_BYTES[request.optimizer]
    shards = request.shards
    if shards > 1:
        weights, gradients, optimizer_states = (
            math.ceil(weights / shards), math.ceil(gradients / shards),
            math.ceil(optimizer_states / shards))
    if request.offloaded:
        # FSDP2's CPUOffloadPolicy: the shards of weights and gradients, and the optimizer
        # step with its states, stay in host memory; each block's parameters are copied in
        # and gathered for its forward and backward (the gather buffers below).
        weights = gradients = optimizer_states = 0
    gather = all_gather_bytes(layout, request)
    activations = activation_bytes(layout, request)
    logits = logits_bytes(layout, request)
    tensors = weights + gradients + optimizer_states + gather + activations + logits
    return MemoryEstimate(
        weights=weights,
        gradients=gradients,
        optimizer_states=optimizer_states,
        all_gather_buffers=gather,
        activations=activations,
        logits=logits,
        cuda_context=CUDA_CONTEXT_BYTES if request.gpus > 0 else 0,
        allocator_overhead=math.ceil(tensors * ALLOCATOR_OVERHEAD),
        parameters=params,
        trainable_parameters=trainable,
    )


def all_gather_bytes(layout: ModelLayout, request: PlanRequest) -> int:
    """FSDP's unsharded copies: the largest unit's parameters in the compute dtype, twice (the
    unit computing and the one prefetched), plus its unsharded fp32 gradients under training.

    The unit is a transformer block; the embedding and the output layer are units of their own
    (or of the root), so the largest of those counts when it is bigger than a block.
    """
    if request.shards <= 1 and not request.offloaded:
        return 0
    a = compute_bytes(request.precision)
    largest = _largest_unit(layout)
    gradient = largest * 4 if request.method is Method.FULL else 0
    return 2 * largest * a + gradient


def _largest_unit(layout: ModelLayout) -> int:
    layers = max(layout.arch.num_layers, 1)
    in_blocks = sum(m.numel for m in layout.linears if m.in_block) + sum(
        w.numel for w in layout.weights if w.kind is WeightKind.EXPERTS)
    outside = [m.numel for m in layout.linears if not m.in_block] + [
        w.numel for w in layout.weights if w.kind is not WeightKind.EXPERTS]
    return max([in_blocks // layers, *outside])


def _frozen_base_bytes(layout: ModelLayout, request: PlanRequest, a: int) -> int:
    if request.method is not Method.QLORA:
        return layout.parameters * a
    quantised = sum(
        m.in_features * m.out_features for m in layout.linears if m.in_block and not m.tied
    ) + sum(w.numel for w in layout.weights if w.kind is WeightKind.EXPERTS)
    rest = layout.parameters - quantised
    # bitsandbytes dequantises one weight at a time to the compute dtype for its matmul.
    largest = max((m.in_features * m.out_features for m in layout.linears if m.in_block), default=0)
    return math.ceil(quantised * NF4_BYTES_PER_WEIGHT) + rest * a + largest * a


def effective_seq_length(layout: ModelLayout, request: PlanRequest) -> int:
    """Models with a learned position table (BERT, GPT-2) cannot take longer sequences."""
    cap = layout.arch.max_positions
    return min(request.seq_length, cap) if cap else request.seq_length


def sequences_per_batch(request: PlanRequest) -> int:
    """Sequences one forward pass holds: a preference pair is two (chosen and rejected)."""
    return request.batch_size * (2 if request.preference else 1)


def activation_bytes(layout: ModelLayout, request: PlanRequest) -> int:
    """Activations autograd keeps for the backward pass, all layers.

    Adapted from Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
    Transformer Models" (arXiv:2205.05198), section 4.1: a GPT layer keeps
    s*b*h*(34 + 5*a*s/h) bytes in 16 bits. We count the same saved tensors, per layer, for
    today's layers: SDPA keeps no s x s scores (the 5as/h term goes), dropout masks only when
    the config has dropout, grouped-query k/v, gated MLPs, the model's own norm count, top-k
    experts per token. A frozen linear layer keeps no input (autograd saves a matmul's input
    only for the weight's gradient); a LoRA-adapted one does, and with LoRA dropout every
    adapter keeps its own dropped copy and mask. With gradient checkpointing only each layer's
    input stays, plus one layer's activations while it is recomputed.

    Gradients are counted as alive alongside the activations: true with gradient
    accumulation, a little pessimistic (by the gradients) for full finetuning without it.
    """
    arch = layout.arch
    tokens = effective_seq_length(layout, request) * sequences_per_batch(request)
    a = compute_bytes(request.precision)
    h, k = arch.hidden_size, arch.experts_per_token

    norms = arch.norms_per_layer * h  # each norm keeps its input
    attention = 2 * arch.q_dim + 2 * arch.kv_dim  # SDPA keeps q, k, v and its output
    # Gated: gate output (for the activation), activation and up outputs (for their product).
    # Plain: the activation's input.
    mlp = (3 if arch.gated_mlp else 1) * arch.intermediate_size * k
    per_token_bytes = (norms + attention + mlp) * a + _linear_input_bytes(layout, request, a)
    if arch.dropout:
        per_token_bytes += 2 * h  # residual-dropout masks, 1 byte per element
    layer_bytes = tokens * per_token_bytes

    if request.gradient_checkpointing:
        # The loss's logit buffers are freed before the first layer is recomputed, so the
        # recomputed layer only adds what it needs beyond them (measured on CPU: counting
        # both overestimated checkpointed runs by half).
        recompute = max(0, layer_bytes - logits_bytes(layout, request))
        kept = arch.num_layers * tokens * h * a + recompute
    else:
        kept = arch.num_layers * layer_bytes
    # After the blocks: the final norm's input, and the output layer's input when trained.
    trained_head = request.method is Method.FULL and layout.task is Task.CAUSAL_LM
    return kept + tokens * h * a * (2 if trained_head else 1)


def _input_widths(arch: Architecture) -> dict[InputRole, int]:
    """Elements per token of the tensor each role reads, not already kept by another op."""
    moe = arch.num_experts > 1
    return {
        InputRole.ATTN_IN: arch.hidden_size,
        InputRole.ATTN_OUT: 0,  # the attention output, which SDPA keeps anyway
        # Falcon-7B's parallel block feeds one normed tensor to attention and MLP alike;
        # MoE blocks gather a copy per routed expert.
        InputRole.MLP_IN: 0
        if arch.norms_per_layer == 1
        else arch.hidden_size * (1 + moe * arch.experts_per_token),
        InputRole.MLP_MID: arch.intermediate_size * arch.experts_per_token,
    }


def _linear_input_bytes(layout: ModelLayout, request: PlanRequest, a: int) -> int:
    """Per token and layer: inputs that trained linear layers keep for their weight gradients."""
    widths = _input_widths(layout.arch)
    if request.method is Method.FULL:
        return sum(widths.values()) * a
    layers = max(layout.arch.num_layers, 1)
    adapted = [m for m in adapted_linears(layout, request.lora_target_modules) if m.reads]
    adapted += adapted_expert_weights(layout, request.lora_target_modules)
    if request.lora_dropout > 0:
        # Each adapter keeps dropout(x) in the compute dtype and a 1-byte mask.
        k = layout.arch.experts_per_token
        width = sum(m.in_features * (k if isinstance(m, Weight) else 1) for m in adapted)
        return width * (a + 1) // layers
    # Without dropout the adapters of one layer share their module's input.
    return sum(widths[role] for role in {m.reads for m in adapted if m.reads}) * a


def logits_bytes(layout: ModelLayout, request: PlanRequest) -> int:
    """The causal-LM loss's copies of the batch*seq*vocab logits at the start of backward.

    transformers upcasts the logits to fp32 for the cross-entropy loss (batch*seq*vocab*4
    bytes); cross-entropy keeps its fp32 log-softmax; the backward pass then holds the fp32
    gradient of that and the gradient of the logits themselves. The benchmark
    (benchmarks/planner_accuracy.py) measured about four fp32-sized copies on CPU.
    """
    if layout.task is not Task.CAUSAL_LM:
        return 0  # batch x num_labels: nothing
    tokens = effective_seq_length(layout, request) * sequences_per_batch(request)
    a = compute_bytes(request.precision)
    upcast = 4 if a != 4 else 0  # fp32 logits are not copied again
    per_element = a + upcast + 4 + 4 + a  # logits, fp32 copy, log-softmax, its grad, grad
    return tokens * layout.arch.vocab_size * per_element
