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
