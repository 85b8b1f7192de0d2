"""Fit decisions, messages, and alternatives that really fit by the same estimator."""

from __future__ import annotations

import re

import pytest
from kubetune.planner import DDP_NOTE, PlanRequest, check_fit, estimate_memory, parse_quantity

from tests.planner.test_memory import layout_of

GI80 = parse_quantity("80Gi")


@pytest.fixture
def llama():
    return layout_of("meta-llama/Meta-Llama-3-8B")


def test_fitting_run_says_how_much_of_the_gpu_it_needs(llama):
    result = check_fit(llama, PlanRequest(method="lora", batch_size=1, seq_length=1024), GI80)
    assert result.fits is True and result.reason == "Fits"
    assert re.fullmatch(r"needs ~\d+\.\d GiB of 80 GiB per GPU", result.message)
    assert result.alternatives == [] and result.shortfall_bytes == 0


def test_full_finetune_of_8b_misses_and_offers_alternatives_that_fit(llama):
    request = PlanRequest(method="full", batch_size=1, seq_length=2048)
    result = check_fit(llama, request, GI80)
    assert result.fits is False and result.reason == "DoesNotFit"
    assert result.shortfall_bytes == result.estimate.total - GI80 > 0
    assert result.message.startswith(f"needs ~{result.estimate.total / 2**30:.1f} GiB, ")
    assert " more than the 80 GiB per GPU; would fit: " in result.message
    assert result.alternatives
    for alt in result.alternatives:
        # Priced by the same estimator, and the price is what the message shows.
        assert estimate_memory(llama, alt.request).total == alt.estimated_bytes <= GI80
        assert f"{alt.description} (~{alt.estimated_bytes / 2**30:.1f} GiB)" in result.message
    assert "method lora" in [a.description for a in result.alternatives]


def test_smaller_batch_keeps_the_effective_batch(llama):
    request = PlanRequest(method="lora", batch_size=4, gradient_accumulation_steps=2,
                          seq_length=2048)  # fmt: skip
    result = check_fit(llama, request, parse_quantity("40Gi"))
    batch = [a for a in result.alternatives if "batchSize" in a.description]
    assert len(batch) == 1  # only the largest batch that fits
    alt = batch[0].request
    assert alt.batch_size < 4
    assert alt.batch_size * alt.gradient_accumulation_steps == 8
    assert batch[0].changes == {
        "hyperparameters.batchSize": alt.batch_size,
        "hyperparameters.gradientAccumulationSteps": alt.gradient_accumulation_steps,
    }


def test_checkpointing_is_offered_when_it_is_off(llama):
    result = check_fit(llama, PlanRequest(method="lora", batch_size=8, seq_length=2048), GI80)
    assert "gradientCheckpointing: true" in [a.description for a in result.alternatives]


def test_qlora_is_offered_only_on_gpus():
    qwen = layout_of("Qwen/Qwen2.5-0.5B")
    request = PlanRequest(method="lora", batch_size=1, seq_length=128)
    need = estimate_memory(qwen, request).total
    on_gpu = check_fit(qwen, request, need - 1)
    on_cpu = check_fit(qwen, request.with_changes(gpus=0), need - 1)
    assert "method qlora" in [a.description for a in on_gpu.alternatives]
    assert "method qlora" not in [a.description for a in on_cpu.alternatives]


def test_when_no_single_change_fits_a_combination_is_offered(llama):
    request = PlanRequest(method="full", batch_size=8, seq_length=2048)
    result = check_fit(llama, request, parse_quantity("24Gi"))
    assert len(result.alternatives) == 1
    combo = result.alternatives[0]
    assert " + " in combo.description
    assert combo.description.count("method ") <= 1  # qlora replaces lora, not both
    assert estimate_memory(llama, combo.request).total <= parse_quantity("24Gi")


def test_hopeless_run_says_so_and_explains_more_gpus_do_not_help(llama):
    result = check_fit(llama, PlanRequest(method="full"), parse_quantity("1Gi"))
    assert result.alternatives == []
    assert DDP_NOTE in result.message


def test_unknown_capacity_gives_unknown(llama):
    result = check_fit(llama, PlanRequest(), None)
    assert result.fits is None and result.reason == "Unknown"
    assert "spec.resources.gpuMemory" in result.message


def test_fsdp_divides_state_by_all_gpus_of_all_nodes_and_adds_gather_buffers(llama):
    """Weights, gradients and optimizer states split over gpus x nodes; activations and logits
    stay per GPU; the gathered block (twice, for prefetch) and its gradients are added."""
    ddp = PlanRequest(method="full", gpus=4, nodes=2, batch_size=1)
    fsdp = ddp.with_changes(strategy="fsdp")
    a, b = estimate_memory(llama, ddp), estimate_memory(llama, fsdp)
    for item in ("weights", "gradients", "optimizer_states"):
        assert getattr(b, item) == -(-getattr(a, item) // 8)
    assert (b.activations, b.logits) == (a.activations, a.logits)
    assert a.all_gather_buffers == 0
    # Llama-3-8B's largest unit is the 128256 x 4096 embedding: bf16 twice + fp32 gradient.
    assert b.all_gather_buffers == 128256 * 4096 * (2 + 2 + 4)


def test_fsdp_on_one_gpu_shards_nothing(llama):
    one = PlanRequest(method="full", gpus=1, strategy="fsdp")
    assert estimate_memory(llama, one) == estimate_memory(llama, one.with_changes(strategy="ddp"))


def test_combined_alternative_with_qlora_sets_ddp_back(llama):
    """4-bit weights do not shard here: a pile of changes ending in qlora says strategy ddp."""
    request = PlanRequest(method="full", gpus=2, batch_size=8, seq_length=4096)
    result = check_fit(llama, request, parse_quantity("24Gi"))
    assert result.fits is False
    [alternative] = result.alternatives
    assert alternative.changes["method.type"] == "qlora"
    assert alternative.changes["resources.strategy"] == "ddp"
    assert alternative.request.strategy == "ddp"
    assert "strategy: fsdp" not in alternative.description


def test_cpu_offload_takes_weights_gradients_and_optimizer_state_off_the_gpu(llama):
    """FSDP2's CPUOffloadPolicy keeps the shards and the optimizer step in host memory: the
    GPU keeps the gathered units, activations and logits (and the CUDA context)."""
    sharded = PlanRequest(method="full", gpus=8, batch_size=1, strategy="fsdp")
    offloaded = sharded.with_changes(cpu_offload=True)
    a, b = estimate_memory(llama, sharded), estimate_memory(llama, offloaded)
    assert (b.weights, b.gradients, b.optimizer_states) == (0, 0, 0) < (a.weights, a.gradients,
                                                                        a.optimizer_states)
    assert (b.all_gather_buffers, b.activations, b.logits) == (
        a.all_gather_buffers, a.activations, a.logits)
    # Without fsdp there is nothing to offload (the API refuses cpuOffload with ddp).
    replica = PlanRequest(method="full", gpus=8, batch_size=1)
    assert estimate_memory(llama, replica.with_changes(cpu_offload=True)) == estimate_memory(
        llama, replica)


def test_offloading_is_offered_last_when_sharding_alone_does_not_fit(llama):
    request = PlanRequest(method="full", gpus=2, batch_size=1, seq_length=1024, strategy="fsdp")
    result = check_fit(llama, request, parse_quantity("40Gi"))
    assert result.fits is False
    offload = result.alternatives[-1]
    assert offload.changes == {"resources.cpuOffload": True}
    assert offload.description == "cpuOffload: true"
    assert offload.estimated_bytes == estimate_memory(llama, request.with_changes(
        cpu_offload=True)).total <= parse_quantity("40Gi")
    ddp = check_fit(llama, request.with_changes(strategy="ddp"), parse_quantity("40Gi"))
    assert {"resources.strategy": "fsdp", "resources.cpuOffload": True} in [
        a.changes for a in ddp.alternatives]
