"""config.json -> ModelLayout, one builder per model family.

Each builder mirrors the module tree that transformers 5 builds for the same config
(`AutoModelForCausalLM` / `AutoModelForSequenceClassification` / `AutoModel`), so that the
parameter count equals `sum(p.numel() for p in model.parameters())`. Defaults are those of the
transformers config classes: published config.json files omit keys that equal the default.
tests/planner/test_parameters.py holds each builder to the real transformers model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubetune.planner.layout import (
    Architecture,
    InputRole,
    Linear,
    ModelLayout,
    Task,
    Weight,
    WeightKind,
)

EXPERTS = WeightKind.EXPERTS
ATTN_IN, ATTN_OUT = InputRole.ATTN_IN, InputRole.ATTN_OUT
MLP_IN, MLP_MID = InputRole.MLP_IN, InputRole.MLP_MID


class UnsupportedModel(ValueError):
    """The config names a model family the planner cannot count."""


def _get(config: Mapping[str, Any], key: str, default: Any) -> Any:
    # config.json writes `"head_dim": null` and the like: null means "use the default".
    value = config.get(key)
    return default if value is None else value


def _int(config: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = _get(config, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnsupportedModel(f"config.json: {key} must be a positive integer, got {value!r}")
    return value


def _num_labels(config: Mapping[str, Any], num_labels: int | None) -> int:
    if num_labels is not None:
        return num_labels
    if config.get("num_labels"):
        return int(config["num_labels"])
    if config.get("id2label"):
        return len(config["id2label"])
    return 2  # transformers' PretrainedConfig default


# --------------------------------------------------------------------------- decoders (Llama-like)


# A bias is either fixed by the family (True/False) or read from a config key (default False).
BiasRule = bool | str


def _bias(config: Mapping[str, Any], rule: BiasRule) -> bool:
    return rule if isinstance(rule, bool) else bool(_get(config, rule, False))


@dataclass(frozen=True)
class _DecoderStyle:
    """How a Llama-descended family differs from Llama."""

    tie_default: bool = False
    head_dim_default: int | None = None  # None: hidden_size // num_attention_heads
    qkv_bias: BiasRule = "attention_bias"
    o_bias: BiasRule = "attention_bias"
    mlp_bias: BiasRule = False
    qk_norm: bool = False  # Qwen3 and Gemma3 normalise q and k per head
    norms_per_layer: int = 2  # Gemma2/3 add pre/post feed-forward norms
    fused: bool = False  # Phi-3: qkv_proj and gate_up_proj
    moe: bool = False  # Mixtral


_DECODERS: dict[str, _DecoderStyle] = {
    "llama": _DecoderStyle(mlp_bias="mlp_bias"),
    "mistral": _DecoderStyle(qkv_bias=False, o_bias=False),
    "mixtral": _DecoderStyle(qkv_bias=False, o_bias=False, moe=True),
    # Qwen2 hard-codes biases on q, k and v (and none on o).
    "qwen2": _DecoderStyle(qkv_bias=True, o_bias=False),
    "qwen3": _DecoderStyle(head_dim_default=128, qk_norm=True),
    # Gemma scales the embedding by sqrt(hidden_size): a constant, no parameter.
    "gemma": _DecoderStyle(tie_default=True, head_dim_default=256),
    "gemma2": _DecoderStyle(tie_default=True, head_dim_default=256, norms_per_layer=4),
    "gemma3_text": _DecoderStyle(tie_default=True, head_dim_default=256, qk_norm=True, norms_per_layer=4),
    "phi3": _DecoderStyle(qkv_bias=False, o_bias=False, fused=True),
}


def _decoder(config: Mapping[str, Any], task: Task, num_labels: int | None) -> ModelLayout:
    family = config["model_type"]
    style = _DECODERS[family]
    hidden = _int(config, "hidden_size")
    layers = _int(config, "num_hidden_layers")
    heads = _int(config, "num_attention_heads")
    kv_heads = _int(config, "num_key_value_heads", heads)
    head_dim = _int(config, "head_dim", style.head_dim_default or hidden // heads)
    inter = _int(config, "intermediate_size")
    vocab = _int(config, "vocab_size")
    experts = _int(config, "num_local_experts", 8) if style.moe else 1
    top_k = _int(config, "num_experts_per_tok", 2) if style.moe else 1
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    qkv_bias = _bias(config, style.qkv_bias)
    o_bias = _bias(config, style.o_bias)
    mlp_bias = _bias(config, style.mlp_bias)

    linears: list[Linear] = []
    weights = [Weight("model.embed_tokens.weight", vocab * hidden, WeightKind.EMBEDDING)]
    for i in range(layers):
        p = f"model.layers.{i}"
        if style.fused:
            qkv_out = q_dim + 2 * kv_dim
            linears.append(Linear(f"{p}.self_attn.qkv_proj", hidden, qkv_out, qkv_bias, reads=ATTN_IN))
        else:
            linears += [
                Linear(f"{p}.self_attn.q_proj", hidden, q_dim, qkv_bias, reads=ATTN_IN),
                Linear(f"{p}.self_attn.k_proj", hidden, kv_dim, qkv_bias, reads=ATTN_IN),
                Linear(f"{p}.self_attn.v_proj", hidden, kv_dim, qkv_bias, reads=ATTN_IN),
            ]
        linears.append(Linear(f"{p}.self_attn.o_proj", q_dim, hidden, o_bias, reads=ATTN_OUT))
        if style.qk_norm:
            weights += [
                Weight(f"{p}.self_attn.q_norm.weight", head_dim, WeightKind.NORM),
                Weight(f"{p}.self_attn.k_norm.weight", head_dim, WeightKind.NORM),
            ]
        if style.moe:
            # transformers 5 fuses the experts into 3-D parameters and the router is a bare
            # weight: none is an nn.Linear, but peft still adapts them (see lora.py).
            weights += [
                Weight(
                    f"{p}.mlp.gate.weight", experts * hidden, WeightKind.ROUTER,
                    lora_names=("gate",), in_features=hidden, out_features=experts, reads=MLP_IN,
                ),
                Weight(
                    f"{p}.mlp.experts.gate_up_proj", experts * 2 * inter * hidden, EXPERTS,
                    lora_names=("w1", "w3"), in_features=hidden, out_features=2 * inter, reads=MLP_IN,
                    experts=experts,
                ),
                Weight(
                    f"{p}.mlp.experts.down_proj", experts * inter * hidden, EXPERTS,
                    lora_names=("w2",), in_features=inter, out_features=hidden, experts=experts,
                    reads=MLP_MID,
                ),
            ]  # fmt: skip
        elif style.fused:
            linears += [
                Linear(f"{p}.mlp.gate_up_proj", hidden, 2 * inter, mlp_bias, reads=MLP_IN),
                Linear(f"{p}.mlp.down_proj", inter, hidden, mlp_bias, reads=MLP_MID),
            ]
        else:
            linears += [
                Linear(f"{p}.mlp.gate_proj", hidden, inter, mlp_bias, reads=MLP_IN),
                Linear(f"{p}.mlp.up_proj", hidden, inter, mlp_bias, reads=MLP_IN),
                Linear(f"{p}.mlp.down_proj", inter, hidden, mlp_bias, reads=MLP_MID),
            ]
        norms = range(style.norms_per_layer)
        weights += [Weight(f"{p}.norm{n}.weight", hidden, WeightKind.NORM) for n in norms]
    weights.append(Weight("model.norm.weight", hidden, WeightKind.NORM))

    tied = bool(_get(config, "tie_word_embeddings", style.tie_default))
    head = _head(task, linears, hidden, vocab, tied, num_labels, config, "score", cls_bias=False)
    arch = Architecture(
        family=family,
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=vocab,
        gated_mlp=True,
        norms_per_layer=style.norms_per_layer,
        max_positions=None,  # rotary positions: no learned table caps the length
        dropout=False,
        num_experts=experts,
        experts_per_token=top_k,
    )
    return ModelLayout(arch, task, tuple(linears), tuple(weights), head)


def _head(
    task: Task,
    linears: list[Linear],
    hidden: int,
    vocab: int,
    tied: bool,
    num_labels: int | None,
    config: Mapping[str, Any],
    cls_name: str,
    cls_bias: bool,
) -> str | None:
    """Append the task's output layer to `linears`; return its module name."""
    if task is Task.CAUSAL_LM:
        linears.append(Linear("lm_head", hidden, vocab, bias=False, tied=tied, in_block=False))
        return "lm_head"
    if task is Task.SEQUENCE_CLASSIFICATION:
        labels = _num_labels(config, num_labels)
        linears.append(Linear(cls_name, hidden, labels, bias=cls_bias, in_block=False))
        return cls_name
    return None


# ------------------------------------------------------------------- GPT-2, GPT-NeoX, Falcon


def _gpt2(config: Mapping[str, Any], task: Task, num_labels: int | None) -> ModelLayout:
    hidden = _int(config, "n_embd", 768)
    layers = _int(config, "n_layer", 12)
    heads = _int(config, "n_head", 12)
    inner = _int(config, "n_inner", 4 * hidden)
    vocab = _int(config, "vocab_size", 50257)
    positions = _int(config, "n_positions", 1024)
    linears: list[Linear] = []
    weights = [
        Weight("transformer.wte.weight", vocab * hidden, WeightKind.EMBEDDING),
        Weight("transformer.wpe.weight", positions * hidden, WeightKind.EMBEDDING),
    ]
    for i in range(layers):
        p = f"transformer.h.{i}"
        # Conv1D layers always carry a bias; peft adapts them like nn.Linear.
        linears += [
            Linear(f"{p}.attn.c_attn", hidden, 3 * hidden, bias=True, reads=ATTN_IN),
            Linear(f"{p}.attn.c_proj", hidden, hidden, bias=True, reads=ATTN_OUT),
            Linear(f"{p}.mlp.c_fc", hidden, inner, bias=True, reads=MLP_IN),
            Linear(f"{p}.mlp.c_proj", inner, hidden, bias=True, reads=MLP_MID),
        ]
        weights += [Weight(f"{p}.ln_{n}", 2 * hidden, WeightKind.NORM) for n in (1, 2)]
    weights.append(Weight("transformer.ln_f", 2 * hidden, WeightKind.NORM))
    tied = bool(_get(config, "tie_word_embeddings", True))
    head = _head(task, linears, hidden, vocab, tied, num_labels, config, "score", cls_bias=False)
    dropout = any(_get(config, k, 0.1) > 0 for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop"))
    arch = Architecture(
        "gpt2", layers, hidden, heads, heads, hidden // heads, inner, vocab,
        gated_mlp=False, norms_per_layer=2, max_positions=positions, dropout=dropout,
    )  # fmt: skip
    return ModelLayout(arch, task, tuple(linears), tuple(weights), head)


def _gpt_neox(config: Mapping[str, Any], task: Task, num_labels: int | None) -> ModelLayout:
    hidden = _int(config, "hidden_size")
    layers = _int(config, "num_hidden_layers")
    heads = _int(config, "num_attention_heads")
    inter = _int(config, "intermediate_size")
    vocab = _int(config, "vocab_size")
    attn_bias = bool(_get(config, "attention_bias", True))
    linears: list[Linear] = []
    weights = [Weight("gpt_neox.embed_in.weight", vocab * hidden, WeightKind.EMBEDDING)]
    for i in range(layers):
        p = f"gpt_neox.layers.{i}"
        linears += [
            Linear(f"{p}.attention.query_key_value", hidden, 3 * hidden, attn_bias, reads=ATTN_IN),
            Linear(f"{p}.attention.dense", hidden, hidden, attn_bias, reads=ATTN_OUT),
            Linear(f"{p}.mlp.dense_h_to_4h", hidden, inter, bias=True, reads=MLP_IN),
            Linear(f"{p}.mlp.dense_4h_to_h", inter, hidden, bias=True, reads=MLP_MID),
        ]
        weights += [Weight(f"{p}.norm{n}", 2 * hidden, WeightKind.NORM) for n in (1, 2)]
    weights.append(Weight("gpt_neox.final_layer_norm", 2 * hidden, WeightKind.NORM))
    tied = bool(_get(config, "tie_word_embeddings", False))
    head = _head(task, linears, hidden, vocab, tied, num_labels, config, "score", cls_bias=False)
    dropout = _get(config, "hidden_dropout", 0.0) > 0
    arch = Architecture(
        "gpt_neox", layers, hidden, heads, heads, hidden // heads, inter, vocab,
        gated_mlp=False, norms_per_layer=2, max_positions=None, dropout=dropout,
    )  # fmt: skip
    return ModelLayout(arch, task, tuple(linears), tuple(weights), head)


def _falcon(config: Mapping[str, Any], task: Task, num_labels: int | None) -> ModelLayout:
    hidden = _int(config, "hidden_size", 4544)
    layers = _int(config, "num_hidden_layers", 32)
    heads = _int(config, "num_attention_heads", 71)
    kv_heads = _int(config, "num_kv_heads", heads)
    vocab = _int(config, "vocab_size", 65024)
    ffn = _int(config, "ffn_hidden_size", 4 * hidden)
    bias = bool(_get(config, "bias", False))
    new_arch = bool(_get(config, "new_decoder_architecture", False))
    multi_query = bool(_get(config, "multi_query", True))
    parallel = bool(_get(config, "parallel_attn", True))
    head_dim = hidden // heads
    if new_arch:  # Falcon-40B/180B: grouped-query attention
        qkv_out = (2 * kv_heads + heads) * head_dim
    elif multi_query:  # Falcon-7B: one shared key/value head
        qkv_out, kv_heads = hidden + 2 * head_dim, 1
    else:
        qkv_out, kv_heads = 3 * hidden, heads
    # The decoder layer's norms: two when attention and MLP run in sequence, or in parallel
    # with separate norms (the new architecture's default), else one shared.
    lns = _get(config, "num_ln_in_parallel_attn", 2 if new_arch else None)
    norms = 2 if (not parallel or lns == 2) else 1
    linears: list[Linear] = []
    weights = [Weight("transformer.word_embeddings.weight", vocab * hidden, WeightKind.EMBEDDING)]
    for i in range(layers):
        p = f"transformer.h.{i}"
        linears += [
            Linear(f"{p}.self_attention.query_key_value", hidden, qkv_out, bias, reads=ATTN_IN),
            Linear(f"{p}.self_attention.dense", hidden, hidden, bias, reads=ATTN_OUT),
            Linear(f"{p}.mlp.dense_h_to_4h", hidden, ffn, bias, reads=MLP_IN),
            Linear(f"{p}.mlp.dense_4h_to_h", ffn, hidden, bias, reads=MLP_MID),
        ]
        weights += [Weight(f"{p}.ln{n}", 2 * hidden, WeightKind.NORM) for n in range(norms)]
    weights.append(Weight("transformer.ln_f", 2 * hidden, WeightKind.NORM))
    tied = bool(_get(config, "tie_word_embeddings", True))
    head = _head(task, linears, hidden, vocab, tied, num_labels, config, "score", cls_bias=False)
    dropout = _get(config, "hidden_dropout", 0.0) > 0
    arch = Architecture(
        "falcon", layers, hidden, heads, kv_heads, head_dim, ffn, vocab,
        gated_mlp=False, norms_per_layer=norms, max_positions=None, dropout=dropout,
    )  # fmt: skip
    return ModelLayout(arch, task, tuple(linears), tuple(weights), head)


# --------------------------------------------------------------------------- encoders


def _bert(config: Mapping[str, Any], task: Task, num_labels: int | None) -> ModelLayout:
    """BERT, RoBERTa, XLM-R and the MiniLM sentence encoders (which are BERTs)."""
    family = config["model_type"]
    roberta = family in ("roberta", "xlm-roberta")
    if task is Task.CAUSAL_LM:
        raise UnsupportedModel(f"{family} is an encoder: use task sequence-classification")
    hidden = _int(config, "hidden_size", 768)
    layers = _int(config, "num_hidden_layers", 12)
    heads = _int(config, "num_attention_heads", 12)
    inter = _int(config, "intermediate_size", 3072)
    vocab = _int(config, "vocab_size", 50265 if roberta else 30522)
    positions = _int(config, "max_position_embeddings", 512)
    token_types = _int(config, "type_vocab_size", 2)
    prefix = "" if task is Task.BASE else (f"{'roberta' if roberta else 'bert'}.")
    emb = f"{prefix}embeddings"
    weights = [
        Weight(f"{emb}.word_embeddings.weight", vocab * hidden, WeightKind.EMBEDDING),
        Weight(f"{emb}.position_embeddings.weight", positions * hidden, WeightKind.EMBEDDING),
        Weight(f"{emb}.token_type_embeddings.weight", token_types * hidden, WeightKind.EMBEDDING),
        Weight(f"{emb}.LayerNorm", 2 * hidden, WeightKind.NORM),
    ]
    linears: list[Linear] = []
    for i in range(layers):
        p = f"{prefix}encoder.layer.{i}"
        linears += [
            Linear(f"{p}.attention.self.query", hidden, hidden, bias=True, reads=ATTN_IN),
            Linear(f"{p}.attention.self.key", hidden, hidden, bias=True, reads=ATTN_IN),
            Linear(f"{p}.attention.self.value", hidden, hidden, bias=True, reads=ATTN_IN),
            Linear(f"{p}.attention.output.dense", hidden, hidden, bias=True, reads=ATTN_OUT),
            Linear(f"{p}.intermediate.dense", hidden, inter, bias=True, reads=MLP_IN),
            Linear(f"{p}.output.dense", inter, hidden, bias=True, reads=MLP_MID),
        ]
        weights += [
            Weight(f"{p}.attention.output.LayerNorm", 2 * hidden, WeightKind.NORM),
            Weight(f"{p}.output.LayerNorm", 2 * hidden, WeightKind.NORM),
        ]
    head = None
    # AutoModel and BertForSequenceClassification keep the pooler; RoBERTa's classification
    # model drops it and brings its own two-layer head instead.
    if not (roberta and task is Task.SEQUENCE_CLASSIFICATION):
        linears.append(Linear(f"{prefix}pooler.dense", hidden, hidden, bias=True, in_block=False))
    if task is Task.SEQUENCE_CLASSIFICATION:
        labels = _num_labels(config, num_labels)
        head = "classifier"
        if roberta:
            linears += [
                Linear("classifier.dense", hidden, hidden, bias=True, in_block=False),
                Linear("classifier.out_proj", hidden, labels, bias=True, in_block=False),
            ]
        else:
            linears.append(Linear("classifier", hidden, labels, bias=True, in_block=False))
    dropout = _get(config, "hidden_dropout_prob", 0.1) > 0
    arch = Architecture(
        family, layers, hidden, heads, heads, hidden // heads, inter, vocab,
        gated_mlp=False, norms_per_layer=2, max_positions=positions, dropout=dropout,
    )  # fmt: skip
    return ModelLayout(arch, task, tuple(linears), tuple(weights), head)


# --------------------------------------------------------------------------- entry point

_BUILDERS: dict[str, Callable[[Mapping[str, Any], Task, int | None], ModelLayout]] = {
    **dict.fromkeys(_DECODERS, _decoder),
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "falcon": _falcon,
    "bert": _bert,
    "roberta": _bert,
    "xlm-roberta": _bert,
}

SUPPORTED_MODEL_TYPES = tuple(sorted(_BUILDERS))


def build_layout(
    config: Mapping[str, Any],
    task: Task | str = Task.CAUSAL_LM,
    num_labels: int | None = None,
) -> ModelLayout:
    """The layout of the model transformers builds from `config` (a config.json dict).

    `num_labels` (classification) defaults to the config's own `num_labels`/`id2label`, else 2.
    Raises UnsupportedModel for other families or malformed configs.
    """
    task = Task(task)
    model_type = config.get("model_type")
    if model_type == "gemma3" and isinstance(config.get("text_config"), Mapping):
        # Gemma 3 4B+ ship a multimodal config; the planner counts the text model only.
        raise UnsupportedModel(
            "gemma3 multimodal configs are not supported; pass the text_config (gemma3_text)"
        )
    builder = _BUILDERS.get(model_type)  # type: ignore[arg-type]
    if builder is None:
        raise UnsupportedModel(
            f"config.json: model_type {model_type!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    return builder(config, task, num_labels)
