"""The per-GPU memory estimate: two cases worked by hand, and how settings move it."""

from __future__ import annotations

import pytest
from kubetune.planner import PlanRequest, build_layout, estimate_memory

from tests.planner.real_configs import REAL_MODELS

GIB = 2**30


def layout_of(name: str, task: str | None = None, **kwargs):
    model = REAL_MODELS[name]
    return build_layout(model["config"], task or model["task"], **kwargs)


def test_qwen25_05b_full_bf16_by_hand():
    est = estimate_memory(
        layout_of("Qwen/Qwen2.5-0.5B"),
        PlanRequest(method="full", precision="bf16", batch_size=1, seq_length=512),
    )
    P = 494_032_768
    # Mixed precision: fp32 master weights + bf16 autocast copy = 6 bytes per parameter,
    # fp32 gradients 4, AdamW's two fp32 states 8.
    assert est.weights == P * 6 == 2_964_196_608
    assert est.gradients == P * 4 == 1_976_131_072
    assert est.optimizer_states == P * 8 == 3_952_262_144
    # Activations, per token and layer, in elements (h=896, I=4864, 14 heads x 64,
    # 2 kv heads x 64): 2 norm inputs 2*896 = 1792; q, k, v and attention output
    # 896+128+128+896 = 2048; gated MLP gate/up/activation outputs 3*4864 = 14592; inputs
    # the trained linears keep: attention input 896 + MLP input 896 + down input 4864 = 6656.
    # 25088 elements * 2 bytes = 50176 bytes; * 512 tokens * 24 layers = 616,562,688;
    # + final-norm and lm_head inputs 2 * 512 * 896 * 2 = 1,835,008.
    assert est.activations == 616_562_688 + 1_835_008
    # Logits: 512 tokens * 151936 vocab * (2 bf16 + 4 fp32 copy + 4 log-softmax + 4 its
    # gradient + 2 logits gradient) = 1,244,659,712.
    assert est.logits == 512 * 151_936 * 16 == 1_244_659_712
    assert est.cuda_context == int(0.75 * GIB)
    # Allocator: 10% of the tensors (10,755,647,232 bytes), rounded up.
    assert est.allocator_overhead == 1_075_564_724
    assert est.total == 12_636_518_324  # ~11.8 GiB


def test_llama3_8b_lora_qv_checkpointed_by_hand():
    est = estimate_memory(
        layout_of("meta-llama/Meta-Llama-3-8B"),
        PlanRequest(
            method="lora", precision="bf16", batch_size=2, seq_length=1024, lora_r=16,
            lora_target_modules=("q_proj", "v_proj"), lora_dropout=0.0,
            gradient_checkpointing=True,
        ),
    )  # fmt: skip
    # Trainable: per layer q 16*(4096+4096) = 131072 and v 16*(4096+1024) = 81920;
    # * 32 layers = 6,815,744.
    T = 6_815_744
    assert est.trainable_parameters == T
    # Frozen bf16 base 8,030,261,248 * 2 + fp32 adapters with bf16 copies T * 6.
    assert est.weights == 8_030_261_248 * 2 + T * 6 == 16_101_416_960
    assert est.gradients == T * 4 and est.optimizer_states == T * 8
    # Checkpointing keeps each layer's input: 32 * 2048 tokens * 4096 * 2 = 536,870,912.
    # Recomputing a layer needs 2048 * (8192 norms + 10240 attention + 43008 frozen MLP
    # + 4096 q/v input) * 2 = 268,435,456, less than the 4,202,692,608 of logits already
    # freed by then, so it adds nothing. Final-norm input: 2048 * 4096 * 2 = 16,777,216.
    assert est.activations == 536_870_912 + 16_777_216
    assert est.logits == 2048 * 128_256 * 16 == 4_202_692_608
    # Tensors 20,939,546,624 + 10% (2,093,954,663) + CUDA context 805,306,368.
    assert est.total == 23_838_807_655  # ~22.2 GiB


@pytest.fixture
def llama():
    return layout_of("meta-llama/Meta-Llama-3-8B")


def test_gradient_checkpointing_lowers_activations(llama):
    off = estimate_memory(llama, PlanRequest(method="full"))
    on = estimate_memory(llama, PlanRequest(method="full", gradient_checkpointing=True))
    assert on.activations < off.activations / 5
    assert on.weights == off.weights


def test_methods_order_full_lora_qlora(llama):
    full, lora, qlora = (estimate_memory(llama, PlanRequest(method=m)).total
                         for m in ("full", "lora", "qlora"))  # fmt: skip
    assert full > lora > qlora
    qlora_weights = estimate_memory(llama, PlanRequest(method="qlora")).weights
    # About 0.52 bytes for the block weights; embeddings and lm_head (2 * 525M) stay 16-bit.
    assert 5.5e9 < qlora_weights < 6.5e9


def test_eight_bit_adam_quarters_the_optimizer_states(llama):
    adam = estimate_memory(llama, PlanRequest(method="full"))
    adam8 = estimate_memory(llama, PlanRequest(method="full", optimizer="adamw-8bit"))
    assert adam8.optimizer_states * 4 == adam.optimizer_states


def test_more_gpus_do_not_lower_memory_per_gpu(llama):
    one = estimate_memory(llama, PlanRequest(gpus=1))
    eight = estimate_memory(llama, PlanRequest(gpus=8, nodes=2))
    assert one.total == eight.total


def test_fp32_has_no_autocast_copies(llama):
    est = estimate_memory(llama, PlanRequest(method="full", precision="fp32", gpus=0))
    assert est.weights == llama.parameters * 4
    assert est.cuda_context == 0  # CPU


def test_learned_positions_cap_the_sequence_length():
    minilm = layout_of("sentence-transformers/all-MiniLM-L6-v2", "sequence-classification")
    at_512 = estimate_memory(minilm, PlanRequest(seq_length=512))
    at_2048 = estimate_memory(minilm, PlanRequest(seq_length=2048))
    assert at_512 == at_2048
    assert at_512.logits == 0  # a handful of labels, not a vocabulary


def test_items_are_camel_case_and_add_up_to_the_total(llama):
    est = estimate_memory(llama, PlanRequest())
    items = est.items()
    assert set(items) == {"weights", "gradients", "optimizerStates", "allGatherBuffers",
                          "activations", "logits", "cudaContext", "allocatorOverhead"}  # fmt: skip
    assert sum(items.values()) == est.total


def test_request_rejects_impossible_settings():
    with pytest.raises(ValueError, match="batch_size"):
        PlanRequest(batch_size=0)
    with pytest.raises(ValueError):
        PlanRequest(method="prefix-tuning")
