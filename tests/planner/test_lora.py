"""LoRA trainable counts equal what peft reports for the same LoraConfig."""

from __future__ import annotations

import pytest
import torch
from kubetune.planner import UnknownTargetModules, build_layout, lora_trainable_parameters
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig

from tests.planner.test_parameters import AUTO, TINY

PEFT_TASK = {"causal-lm": "CAUSAL_LM", "sequence-classification": "SEQ_CLS"}
CASES = [
    ("llama", "causal-lm", ["all-linear"]),
    ("llama", "causal-lm", ["q_proj", "v_proj"]),
    ("llama", "sequence-classification", ["all-linear"]),
    ("llama-tied", "causal-lm", ["all-linear"]),
    ("qwen2", "causal-lm", ["all-linear"]),
    ("qwen3", "sequence-classification", ["all-linear"]),
    ("gemma3_text", "causal-lm", ["all-linear"]),
    ("phi3", "causal-lm", ["all-linear"]),
    ("phi3", "causal-lm", ["qkv_proj"]),
    ("mixtral", "causal-lm", ["all-linear"]),  # fused experts via peft target_parameters
    ("mixtral", "causal-lm", ["w1", "w2", "w3"]),
    ("mixtral", "sequence-classification", ["gate", "q_proj"]),
    ("gpt2", "causal-lm", ["all-linear"]),  # Conv1D layers
    ("gpt2", "sequence-classification", ["c_attn"]),
    ("gpt_neox", "causal-lm", ["all-linear"]),
    ("falcon-40b-style", "causal-lm", ["all-linear"]),
    ("bert", "sequence-classification", ["all-linear"]),  # pooler.dense is adapted too
    ("bert", "sequence-classification", ["query", "value"]),
    ("roberta", "sequence-classification", ["all-linear"]),  # head saved, not adapted
]


def peft_trainable(case: str, task: str, targets: list[str], r: int) -> int:
    model_type, kwargs = TINY[case]
    config = AutoConfig.for_model(model_type, **kwargs, num_labels=3)
    with torch.device("meta"):
        model = AUTO[task].from_config(config)
    target_modules = "all-linear" if targets == ["all-linear"] else targets
    lora = LoraConfig(r=r, target_modules=target_modules, task_type=PEFT_TASK[task])
    return get_peft_model(model, lora).get_nb_trainable_parameters()[0]


@pytest.mark.parametrize(("case", "task", "targets"), CASES, ids=lambda v: str(v))
def test_trainable_count_equals_peft(case, task, targets):
    model_type, kwargs = TINY[case]
    config = AutoConfig.for_model(model_type, **kwargs).to_dict()
    layout = build_layout(config, task, num_labels=3)
    assert lora_trainable_parameters(layout, 4, targets) == peft_trainable(case, task, targets, 4)


def test_classification_head_is_trainable_in_full():
    # BERT all-linear, r=8, 6 layers of 384 wide (MiniLM): q, k, v, attention.output.dense
    # and pooler.dense are 384x384 -> 8*768 each; intermediate and output 384<->1536 ->
    # 8*1920 each. Per layer 4*6144 + 2*15360 = 55296; 6 layers 331776; pooler 6144;
    # classifier 384*5 + 5 = 1925. Total 339845.
    from tests.planner.real_configs import REAL_MODELS

    config = REAL_MODELS["sentence-transformers/all-MiniLM-L6-v2"]["config"]
    layout = build_layout(config, "sequence-classification", num_labels=5)
    assert lora_trainable_parameters(layout, 8) == 339_845


def test_unknown_target_names_are_refused_with_the_known_ones():
    layout = build_layout({"model_type": "llama", **TINY["llama"][1]})
    with pytest.raises(UnknownTargetModules, match=r"query match no linear layer.*q_proj"):
        lora_trainable_parameters(layout, 8, ["query"])


def test_fused_expert_names_must_come_together():
    layout = build_layout({"model_type": "mixtral", **TINY["mixtral"][1]})
    with pytest.raises(UnknownTargetModules, match="w1 must be targeted together with w3"):
        lora_trainable_parameters(layout, 8, ["w1"])
