"""Parameter counts from config.json equal sum(p.numel()) of the model transformers builds."""

from __future__ import annotations

import pytest
import torch
from kubetune.planner import UnsupportedModel, build_layout
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
)

from tests.planner.real_configs import REAL_MODELS

AUTO = {
    "causal-lm": AutoModelForCausalLM,
    "sequence-classification": AutoModelForSequenceClassification,
    "base": AutoModel,
}

_DECODER = dict(
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=128,
    pad_token_id=0,
)
_ENCODER = dict(
    hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, vocab_size=128
)
# Tiny configs that exercise each family's options (biases, GQA, tying, fused layers, MoE).
TINY: dict[str, tuple[str, dict]] = {
    "llama": ("llama", _DECODER),
    "llama-biases": ("llama", {**_DECODER, "attention_bias": True, "mlp_bias": True}),
    "llama-tied": ("llama", {**_DECODER, "tie_word_embeddings": True}),
    "mistral": ("mistral", _DECODER),
    "mixtral": ("mixtral", {**_DECODER, "num_local_experts": 4, "num_experts_per_tok": 2}),
    "qwen2": ("qwen2", _DECODER),
    "qwen2-tied": ("qwen2", {**_DECODER, "tie_word_embeddings": True}),
    "qwen3": ("qwen3", {**_DECODER, "head_dim": 32}),
    "gemma": ("gemma", {**_DECODER, "head_dim": 16}),
    "gemma2": ("gemma2", {**_DECODER, "head_dim": 16}),
    "gemma3_text": ("gemma3_text", {**_DECODER, "head_dim": 32}),
    "phi3": ("phi3", _DECODER),
    "gpt2": ("gpt2", dict(n_embd=64, n_layer=2, n_head=4, vocab_size=128, n_positions=64)),
    "gpt2-inner": ("gpt2", dict(n_embd=64, n_layer=2, n_head=4, vocab_size=128, n_inner=80)),
    "gpt_neox": ("gpt_neox", {k: v for k, v in _ENCODER.items()}),
    "gpt_neox-nobias": ("gpt_neox", {**_ENCODER, "attention_bias": False}),
    "falcon-7b-style": ("falcon", dict(hidden_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, vocab_size=128)),
    "falcon-40b-style": ("falcon", dict(hidden_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_kv_heads=2, vocab_size=128,
                                        new_decoder_architecture=True, bias=True)),
    "falcon-sequential": ("falcon", dict(hidden_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, vocab_size=128,
                                         multi_query=False, parallel_attn=False)),
    "bert": ("bert", _ENCODER),
    "roberta": ("roberta", _ENCODER),
    "xlm-roberta": ("xlm-roberta", _ENCODER),
}  # fmt: skip
ENCODERS = {"bert", "roberta", "xlm-roberta"}


def transformers_count(model_type: str, kwargs: dict, task: str, num_labels: int = 3) -> int:
    config = AutoConfig.for_model(model_type, **kwargs, num_labels=num_labels)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = AUTO[task].from_config(config)
    return sum(p.numel() for p in model.parameters())


def tiny_cases():
    for case, (model_type, kwargs) in TINY.items():
        for task in AUTO:
            if model_type in ENCODERS and task == "causal-lm":
                continue
            yield pytest.param(model_type, kwargs, task, id=f"{case}-{task}")


@pytest.mark.parametrize(("model_type", "kwargs", "task"), list(tiny_cases()))
def test_count_equals_transformers_on_tiny_configs(model_type, kwargs, task):
    config = AutoConfig.for_model(model_type, **kwargs).to_dict()
    expected = transformers_count(model_type, kwargs, task)
    assert build_layout(config, task, num_labels=3).parameters == expected


@pytest.mark.parametrize("name", list(REAL_MODELS))
def test_count_of_published_model_equals_its_known_size_and_transformers(name):
    model = REAL_MODELS[name]
    config = model["config"]
    counted = build_layout(config, model["task"]).parameters
    assert counted == model["expected"]
    kwargs = {k: v for k, v in config.items() if k != "model_type"}
    assert counted == transformers_count(config["model_type"], kwargs, model["task"])


def test_config_json_defaults_apply_when_keys_are_missing():
    # Published configs omit keys equal to the class defaults: Gemma ties its embeddings
    # by default, Llama does not, and num_key_value_heads defaults to num_attention_heads.
    base = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
            "num_attention_heads": 4, "vocab_size": 128, "head_dim": 16}  # fmt: skip
    gemma = build_layout({"model_type": "gemma", **base})
    llama = build_layout({"model_type": "llama", **base})
    assert next(m for m in gemma.linears if m.name == "lm_head").tied
    assert not next(m for m in llama.linears if m.name == "lm_head").tied
    k_proj = next(m for m in llama.linears if m.name.endswith("k_proj"))
    assert k_proj.out_features == 4 * 16


def test_mixtral_active_parameters_count_top_k_experts():
    mixtral = build_layout(REAL_MODELS["mistralai/Mixtral-8x7B-v0.1"]["config"])
    # Per layer an expert holds 3 * 4096 * 14336 weights; a token uses 2 of the 8.
    idle = 32 * 6 * 3 * 4096 * 14336
    assert mixtral.active_parameters == mixtral.parameters - idle == 12_879_925_248


def test_classification_labels_come_from_the_config_when_not_given():
    config = {"model_type": "bert", **_ENCODER, "id2label": {"0": "a", "1": "b", "2": "c"}}
    with_three = build_layout(config, "sequence-classification")
    with_five = build_layout(config, "sequence-classification", num_labels=5)
    assert with_five.parameters - with_three.parameters == 2 * (64 + 1)


def test_unknown_family_is_refused_with_the_supported_list():
    with pytest.raises(UnsupportedModel, match=r"model_type 't5' is not supported.*llama"):
        build_layout({"model_type": "t5", "d_model": 512})


def test_encoder_refuses_causal_lm():
    with pytest.raises(UnsupportedModel, match="sequence-classification"):
        build_layout({"model_type": "bert", **_ENCODER}, "causal-lm")


def test_malformed_config_names_the_key():
    with pytest.raises(UnsupportedModel, match="hidden_size"):
        build_layout({"model_type": "llama", "hidden_size": "big"})
