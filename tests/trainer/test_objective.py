"""The causal-LM objective the trainer optimises is the one it claims: transformers' own loss
on a padded batch, padding never a target, and the per-token mean over all ranks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from kubetune_trainer.data.batches import collate_packed, collate_padded
from kubetune_trainer.data.encode import IGNORE_INDEX, encode_causal
from kubetune_trainer.data.formats import Example
from kubetune_trainer.data.packing import pack
from kubetune_trainer.models import load_tokenizer
from kubetune_trainer.recipe import FinetuneRecipe, loss_scale
from transformers import AutoModelForCausalLM

from .helpers import colour_chats

CAUSAL = SimpleNamespace(classification=False, liger=[])  # what FinetuneRecipe._forward reads of self


def _examples(tiny_lm, count=6):
    tokenizer = load_tokenizer(f"file://{tiny_lm}")
    return tokenizer, [encode_causal(tokenizer, Example(i, messages=r["messages"]))
                       for i, r in enumerate(colour_chats(count, seed=5))]


def test_the_trainer_loss_equals_transformers_loss_on_a_padded_batch(tiny_lm):
    tokenizer, examples = _examples(tiny_lm)
    assert len({len(e.input_ids) for e in examples}) > 1  # the batch really is padded
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32).eval()
    batch = collate_padded(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        summed, count, _ = FinetuneRecipe._forward(CAUSAL, model, batch, torch.device("cpu"))
        reference = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          labels=batch["labels"]).loss
    assert count == sum(sum(label != IGNORE_INDEX for label in e.labels[1:]) for e in examples)
    torch.testing.assert_close(summed / count, reference, atol=1e-5, rtol=1e-5)


def test_padding_in_packed_batches_is_never_a_target_nor_counted(tiny_lm):
    tokenizer, examples = _examples(tiny_lm, count=8)
    rows = pack(examples, capacity=48)
    assert len({len(row.input_ids) for row in rows}) > 1  # rows of different fill: padding
    batch = collate_packed(rows, tokenizer.pad_token_id)
    for k, row in enumerate(rows):
        assert (batch["labels"][k, len(row.input_ids):] == IGNORE_INDEX).all()
    recipe = SimpleNamespace(classification=False, dpo=None)
    counted = FinetuneRecipe._target_count(recipe, batch)
    real_targets = sum(sum(label != IGNORE_INDEX for label in row.labels[1:]) for row in rows)
    assert counted == real_targets
    assert int(batch["real_tokens"]) == sum(len(e.input_ids) for e in examples)


def test_loss_scale_makes_ddp_optimise_the_mean_over_every_ranks_tokens():
    """Two ranks with 3 and 9 target tokens: DDP averages the ranks' gradients, so with
    loss_scale the step's gradient is that of the mean over all 12 tokens; scaling by each
    rank's own count (the old way) weights rank 0's tokens 3x as much."""
    torch.manual_seed(0)
    weight = torch.randn(4, requires_grad=True)
    inputs = [torch.randn(3, 4), torch.randn(9, 4)]

    def token_losses(x):
        return (x @ weight - 1.0) ** 2

    total = sum(len(x) for x in inputs)
    expected = torch.autograd.grad(torch.cat([token_losses(x) for x in inputs]).mean(),
                                   weight)[0]
    world = len(inputs)
    per_rank = [torch.autograd.grad(token_losses(x).sum() * loss_scale(total, world), weight)[0]
                for x in inputs]
    torch.testing.assert_close(sum(per_rank) / world, expected)  # what DDP's all-reduce does
    local = [torch.autograd.grad(token_losses(x).sum() / len(x), weight)[0] for x in inputs]
    assert not torch.allclose(sum(local) / world, expected)


def test_each_rank_resumes_with_its_own_random_state(tmp_path):
    """Dropout masks differ per rank; after a resume each rank must continue its own stream,
    not rank 0's (which would give every rank the same masks)."""
    from kubetune_trainer import checkpointing
    from kubetune_trainer.storage import Destination

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    states, next_draws = [], []
    for rank in range(2):
        torch.manual_seed(100 + rank)
        states.append(checkpointing.rng_state())
        next_draws.append(torch.rand(3))
    dest = Destination(f"file://{tmp_path}")
    checkpointing.save(dest, step=1, model=model, optimizer=optimizer, scheduler=scheduler,
                       state={}, keep=1, rng_states=states)
    checkpoint = checkpointing.latest(dest)
    for rank in (1, 0, 5):  # rank 5: resumed on more ranks than saved; gets rank 0's
        torch.manual_seed(0)
        checkpointing.load_training_state(checkpoint, optimizer, scheduler, rank=rank)
        assert torch.equal(torch.rand(3), next_draws[rank if rank < 2 else 0])


@pytest.mark.slow
def test_a_model_trained_on_the_colour_data_generates_the_right_answers(tmp_path, tiny_lm,
                                                                         colour_data):
    """The answer is a function of the colour asked about and never appears in the question:
    only a model that learned the mapping (not one that echoes its input) scores here."""
    from kubetune.api import EvalConfig
    from kubetune_trainer.eval.metrics import exact_match
    from kubetune_trainer.eval.recipe import evaluate
    from kubetune_trainer.recipe import FinetuneRecipe

    from .helpers import load, make_config, write_jsonl

    config = make_config(tiny_lm, f"file://{colour_data}", tmp_path / "out",
                         method={"type": "full"},
                         hyperparameters={"maxSteps": 150, "learningRate": 0.003,
                                          "lrScheduler": "constant", "batchSize": 8,
                                          "evalEverySteps": 50})
    summary = FinetuneRecipe(load(config), serve_progress=False).run()
    assert summary["phase"] == "Succeeded"
    held_out = colour_chats(40, seed=99)
    echo = [exact_match(row["messages"][-2]["content"], row["messages"][-1]["content"])
            for row in held_out]
    assert sum(echo) == 0  # echoing the question never gives the answer
    data = write_jsonl(tmp_path / "test.jsonl", held_out)
    scores = evaluate(EvalConfig.model_validate({
        "jobName": "colour", "namespace": "default", "task": "causal-lm",
        "model": {"uri": summary["result"]["modelUri"]}, "dataset": {"uri": f"file://{data}"},
        "metrics": ["exactMatch"], "average": "macro",
        "generation": {"maxNewTokens": 12, "batchSize": 8}, "thresholds": {}, "gpus": 0}))
    exact = next(row for row in scores["results"] if row["name"] == "exactMatch")
    assert exact["value"] >= 0.9, scores["message"]
