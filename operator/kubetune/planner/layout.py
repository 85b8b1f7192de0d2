"""What a model is made of, described without torch.

A `ModelLayout` lists every parameter tensor of the model transformers would build from a
config.json: the linear layers by their module path (so LoRA targeting can follow peft's
name matching) and every other parameter (embeddings, norms, fused MoE experts). Counting
parameters is then a sum; the shapes the activation estimate needs sit in `Architecture`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Task(StrEnum):
    CAUSAL_LM = "causal-lm"  # AutoModelForCausalLM
    SEQUENCE_CLASSIFICATION = "sequence-classification"  # AutoModelForSequenceClassification
    BASE = "base"  # AutoModel: the bare backbone (encoders ship like this, e.g. MiniLM)


class InputRole(StrEnum):
    """The tensor a block's linear layer reads."""

    ATTN_IN = "attn_in"  # normed hidden state, read by q/k/v (or a fused qkv)
    ATTN_OUT = "attn_out"  # attention output, read by the output projection
    MLP_IN = "mlp_in"  # normed hidden state, read by gate/up (or fc1)
    MLP_MID = "mlp_mid"  # the MLP's inner activation, read by down (or fc2)


class WeightKind(StrEnum):
    EMBEDDING = "embedding"
    NORM = "norm"
    EXPERTS = "experts"  # fused MoE expert matrices (3-D parameters, not nn.Linear)
    ROUTER = "router"


@dataclass(frozen=True)
class Linear:
    """An nn.Linear (or GPT-2's Conv1D, which peft treats the same way)."""

    name: str  # module path as transformers names it, e.g. "model.layers.0.self_attn.q_proj"
    in_features: int
    out_features: int
    bias: bool = False
    # The weight is the input embedding's (tie_word_embeddings): torch counts a shared
    # parameter once, so it adds nothing here.
    tied: bool = False
    in_block: bool = True  # inside a transformer block (QLoRA quantises these)
    # Which of the block's tensors it reads (see InputRole); decides what activations a
    # trained layer keeps for its weight gradient.
    reads: InputRole | None = None

    @property
    def numel(self) -> int:
        weight = 0 if self.tied else self.in_features * self.out_features
        return weight + (self.out_features if self.bias else 0)

    @property
    def base_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Weight:
    """Any parameter that is not a linear layer."""

    name: str
    numel: int
    kind: WeightKind
    # MoE parameters that peft's LoRA still reaches (`target_parameters`): the transformers 4
    # module names it accepts for them (Mixtral: w1+w3 -> gate_up_proj, w2 -> down_proj,
    # gate -> the router), and the matrix shape per expert.
    lora_names: tuple[str, ...] = ()
    reads: InputRole | None = None
    in_features: int = 0
    out_features: int = 0
    experts: int = 1


@dataclass(frozen=True)
class Architecture:
    """The shapes that decide activation memory."""

    family: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    gated_mlp: bool  # SwiGLU/GeGLU: gate and up projections
    norms_per_layer: int
    max_positions: int | None  # learned absolute positions cap the sequence length
    dropout: bool  # hidden dropout > 0 keeps masks for backward
    num_experts: int = 1
    experts_per_token: int = 1

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim


@dataclass(frozen=True)
class ModelLayout:
    arch: Architecture
    task: Task
    linears: tuple[Linear, ...]
    weights: tuple[Weight, ...]
    # The output module: "lm_head" for causal-lm, "classifier"/"score" for classification.
    head: str | None

    @property
    def parameters(self) -> int:
        return sum(m.numel for m in self.linears) + sum(w.numel for w in self.weights)

    @property
    def active_parameters(self) -> int:
        """Parameters one token passes through: MoE tokens visit top-k of the experts."""
        arch = self.arch
        idle = sum(
            w.numel * (arch.num_experts - arch.experts_per_token) // arch.num_experts
            for w in self.weights
            if w.kind is WeightKind.EXPERTS
        )
        return self.parameters - idle

    def in_head(self, name: str) -> bool:
        return self.head is not None and (name == self.head or name.startswith(self.head + "."))

    @property
    def head_parameters(self) -> int:
        return sum(m.numel for m in self.linears if self.in_head(m.name)) + sum(
            w.numel for w in self.weights if self.in_head(w.name)
        )
