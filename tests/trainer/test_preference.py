"""DPO: kubetune's loss equals TRL's DPOTrainer loss on the same batch (with a separate
reference model, and with the adapter-disabled base of a LoRA model as TRL uses it), and a
tiny DPO run through the trainer's CLI raises the reward accuracy on held-out pairs."""

from __future__ import annotations

import json

import pytest
import torch
from kubetune_trainer import cli
from kubetune_trainer.data.batches import collate_pairs
from kubetune_trainer.data.encode import IGNORE_INDEX, encode_pair
from kubetune_trainer.data.formats import Example
from kubetune_trainer.preference import dpo_loss, reference_of, sequence_logps

from .helpers import build_tiny_llama, build_tokenizer, colour_feedback, make_config, write_jsonl

PAIRS = [
    {"prompt": "which one is red ?", "chosen": "the red one is number one",
     "rejected": "the red one is number five"},
    {"prompt": "which one is blue ? cat dog", "chosen": "the blue one is number three",
     "rejected": "blue"},
    {"prompt": "what colour ?", "chosen": "green", "rejected": "the green one is number two ."},
]
BETA = 0.3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tokenizer, a policy and a differently initialised reference (so the log-ratios are not 0)."""
    from transformers import AutoModelForCausalLM

    policy_dir, reference_dir = (tmp_path_factory.mktemp(n) for n in ("policy", "reference"))
    tokenizer = build_tokenizer(policy_dir)
    build_tiny_llama(policy_dir, len(tokenizer), seed=0)
    build_tiny_llama(reference_dir, len(tokenizer), seed=1)
    return (tokenizer, AutoModelForCausalLM.from_pretrained(policy_dir),
            AutoModelForCausalLM.from_pretrained(reference_dir))


@pytest.fixture
def fresh_accelerate_state():
    """TRL's trainer sets accelerate's process-wide state; the trainer runs later in this
    process (other tests) must start without it."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def trl_loss_and_batch(tmp_path, policy, reference, tokenizer, peft_config=None):
    """TRL's DPO loss (loss_type sigmoid) on the one batch of PAIRS, that batch, and the model
    TRL trains (with peft_config: the PEFT model TRL wrapped around `policy`)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=BETA, report_to=[], use_cpu=True,
                     per_device_train_batch_size=len(PAIRS), loss_type=["sigmoid"])
    # TRL joins prompt and completion as text; a leading space keeps the words apart.
    rows = [{**p, "chosen": " " + p["chosen"], "rejected": " " + p["rejected"]} for p in PAIRS]
    trainer = DPOTrainer(model=policy, ref_model=reference, args=args, peft_config=peft_config,
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    if peft_config is not None:
        # A fresh adapter starts equal to its base (B = 0): move it so the log-ratios are not 0.
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, parameter in trainer.model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
    # The collator on the dataset in order (the train dataloader shuffles).
    dataset = trainer.train_dataset
    batch = trainer.data_collator([dataset[i] for i in range(len(dataset))])
    return trainer.compute_loss(trainer.model, batch), batch, trainer.model


def kubetune_batch(tokenizer):
    pairs = [encode_pair(tokenizer, Example(i, **p)) for i, p in enumerate(PAIRS)]
    return collate_pairs(pairs, tokenizer.pad_token_id)


def kubetune_loss(policy, reference_model, batch, lora: bool):
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad(), reference_of(policy, None if lora else reference_model) as reference:
        reference_logps = sequence_logps(reference(**inputs, use_cache=False).logits,
                                         batch["labels"])
    policy_logps = sequence_logps(policy(**inputs, use_cache=False).logits, batch["labels"])
    return dpo_loss(policy_logps, reference_logps, BETA)[0].mean()


def assert_same_batch(ours, trl_batch):
    """Both pipelines tokenize the pairs alike: same ids, same completion tokens."""
    width = trl_batch["input_ids"].shape[1]
    assert ours["input_ids"].shape[1] == width
    assert torch.equal(ours["input_ids"] * ours["attention_mask"],
                       trl_batch["input_ids"] * trl_batch["attention_mask"])
    # TRL's completion mask is kubetune's target labels, the first token aside (never a target).
    assert torch.equal((ours["labels"] != IGNORE_INDEX)[:, 1:],
                       trl_batch["completion_mask"][:, 1:].bool())


def test_dpo_loss_equals_trl_with_a_reference_model(tmp_path, models, fresh_accelerate_state):
    tokenizer, policy, reference = models
    expected, trl_batch, _ = trl_loss_and_batch(tmp_path, policy, reference, tokenizer)
    ours = kubetune_batch(tokenizer)
    assert_same_batch(ours, trl_batch)
    loss = kubetune_loss(policy, reference, ours, lora=False)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(loss.item() - 0.6931) > 1e-3  # the two models differ: not the trivial log 2


def test_dpo_loss_equals_trl_with_the_adapter_disabled_base_as_reference(
        tmp_path, models, fresh_accelerate_state):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    tokenizer, base, _ = models
    base = AutoModelForCausalLM.from_pretrained(base.name_or_path)  # TRL wraps it in place
    # TRL with a new adapter and no ref_model: the reference is the adapter-disabled base.
    expected, trl_batch, policy = trl_loss_and_batch(
        tmp_path, base, None, tokenizer,
        peft_config=LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0))
    ours = kubetune_batch(tokenizer)
    assert_same_batch(ours, trl_batch)
    loss = kubetune_loss(policy, None, ours, lora=True)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(loss.item() - 0.6931) > 1e-3


@pytest.mark.slow
def test_a_tiny_dpo_run_through_the_cli_raises_held_out_reward_accuracy(tmp_path, tiny_lm):
    """DPO on colour feedback: the held-out pairs' reward accuracy (chosen over rejected)
    rises from its first evaluation to well above chance (0.5)."""
    train = write_jsonl(tmp_path / "feedback.jsonl", colour_feedback(240, seed=1))
    held_out = write_jsonl(tmp_path / "held-out.jsonl", colour_feedback(60, seed=2))
    config = make_config(
        tiny_lm, f"file://{train}", tmp_path / "out",
        dataset={"format": "feedback", "validation": {"uri": f"file://{held_out}"}},
        method={"type": "dpo", "dpo": {"beta": 0.1, "adapter": "lora"}},
        hyperparameters={"packing": False, "maxSteps": 40, "learningRate": 0.005,
                         "evalEverySteps": 10},
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert cli.main(["--config", str(path)]) == 0
    message = json.loads((tmp_path / "termination-log").read_text())
    result = message["result"]
    assert message["phase"] == "Succeeded" and message["data"]["format"] == "feedback"
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    history = [entry["evalRewardAccuracy"] for entry in written["evalHistory"]]
    assert len(history) == 4 and history[-1] > history[0]
    assert result["evalRewardAccuracy"] >= 0.8
    assert result["rewardAccuracy"] > 0.6 and result["rewardMargin"] > 0
    assert result["adapterUri"].endswith("/adapter")
    report = json.loads((tmp_path / "out" / "data-report.json").read_text())
    assert report["examples"] == "preference pairs (prompt, chosen, rejected)"
    assert report["train"]["rowsOut"] == 240  # one pair per colour question
