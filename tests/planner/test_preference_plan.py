"""DPO in the memory plan: a pair is two sequences in one forward pass, and the reference is
free under LoRA (the adapter-disabled base) but a frozen 16-bit copy under full finetuning."""

from __future__ import annotations

import pytest
from kubetune.api import FinetuneJobSpec
from kubetune.planner import PlanRequest, check_fit, estimate_memory, parse_quantity
from kubetune.planner.job import plan_request

from tests.planner.test_memory import layout_of

GI80 = parse_quantity("80Gi")


@pytest.fixture
def llama():
    return layout_of("meta-llama/Meta-Llama-3-8B")


def spec(method: dict, gpus: int = 1) -> FinetuneJobSpec:
    return FinetuneJobSpec.model_validate({
        "model": {"uri": "hf://meta-llama/Meta-Llama-3-8B"},
        "dataset": {"uri": "s3://data/feedback.jsonl", "format": "feedback"},
        "method": method, "resources": {"gpus": gpus},
        "hyperparameters": {"batchSize": 2, "maxSeqLength": 1024},
        "output": {"uri": "s3://models/out/"}})


@pytest.mark.parametrize(("method", "trained"), [
    ({"type": "dpo"}, "lora"), ({"type": "dpo", "dpo": {"adapter": "full"}}, "full"),
    ({"type": "lora"}, "lora"),
])
def test_a_dpo_spec_is_planned_as_its_adapter_with_preference_pairs(method, trained):
    request = plan_request(spec(method))
    assert request.method.value == trained
    assert request.preference is (method["type"] == "dpo")


def test_pairs_double_activations_and_logits_and_lora_adds_no_reference_weights(llama):
    sft = PlanRequest(method="lora", batch_size=2, seq_length=1024)
    dpo = sft.with_changes(preference=True)
    plain, pairs = estimate_memory(llama, sft), estimate_memory(llama, dpo)
    assert pairs.activations == 2 * plain.activations
    assert pairs.logits == 2 * plain.logits
    # Two sequences per pair cost what a doubled batch costs.
    doubled = estimate_memory(llama, sft.with_changes(batch_size=4))
    assert (pairs.activations, pairs.logits) == (doubled.activations, doubled.logits)
    assert (pairs.weights, pairs.gradients, pairs.optimizer_states) == (
        plain.weights, plain.gradients, plain.optimizer_states)


def test_full_dpo_adds_a_frozen_reference_copy_in_the_compute_dtype(llama):
    sft = PlanRequest(method="full", batch_size=1, seq_length=512, precision="bf16")
    pairs = estimate_memory(llama, sft.with_changes(preference=True))
    assert pairs.weights - estimate_memory(llama, sft).weights == llama.parameters * 2
    fp32 = sft.with_changes(precision="fp32")
    assert (estimate_memory(llama, fp32.with_changes(preference=True)).weights
            - estimate_memory(llama, fp32).weights) == llama.parameters * 4


def test_a_full_dpo_run_that_misses_is_offered_the_lora_adapter_never_another_method(llama):
    request = PlanRequest(method="full", batch_size=1, seq_length=2048, preference=True, gpus=1)
    result = check_fit(llama, request, GI80)
    assert result.fits is False
    changes = [alt.changes for alt in result.alternatives]
    assert {"method.dpo.adapter": "lora"} in changes
    assert all("method.type" not in change for change in changes)  # no qlora, no plain lora
    assert "dpo adapter lora" in result.message


def test_status_plan_of_a_dpo_job_counts_the_pairs(llama):
    from kubetune.planner.job import plan_finetune_job

    from tests.planner.real_configs import REAL_MODELS

    config = REAL_MODELS["meta-llama/Meta-Llama-3-8B"]["config"]
    lora = plan_finetune_job(spec({"type": "lora"}), config, GI80).status_plan()
    dpo = plan_finetune_job(spec({"type": "dpo"}), config, GI80).status_plan()
    assert dpo["trainableParameters"] == lora["trainableParameters"]
    assert dpo["estimatedGpuMemoryBytes"] > lora["estimatedGpuMemoryBytes"]
