"""Packed sequences must give exactly the logits (and loss) of the same examples padded."""

from __future__ import annotations

import torch
from kubetune_trainer.data.batches import StepSchedule, collate_packed, collate_padded
from kubetune_trainer.data.encode import encode_causal
from kubetune_trainer.data.formats import Example
from kubetune_trainer.data.packing import pack
from kubetune_trainer.models import load_tokenizer
from transformers import AutoModelForCausalLM

from .helpers import colour_chats


def encoded_examples(tiny_lm, count=6):
    tokenizer = load_tokenizer(f"file://{tiny_lm}")
    rows = colour_chats(count, seed=3)
    return tokenizer, [encode_causal(tokenizer, Example(i, messages=r["messages"]))
                       for i, r in enumerate(rows)]


def test_packed_logits_equal_padded_logits(tiny_lm):
    tokenizer, examples = encoded_examples(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32).eval()
    rows = pack(examples, capacity=sum(len(e.input_ids) for e in examples))
    assert len(rows) == 1 and len(rows[0].lengths) == len(examples)
    packed = collate_packed(rows, tokenizer.pad_token_id)
    padded = collate_padded(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        packed_logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                              use_cache=False).logits[0]
        padded_logits = model(input_ids=padded["input_ids"],
                              attention_mask=padded["attention_mask"], use_cache=False).logits
        # Without the position reset the same packed row attends across examples.
        naive_logits = model(input_ids=packed["input_ids"], use_cache=False).logits[0]
    offset = 0
    packed_order = sorted(range(len(examples)))  # pack keeps input order within a row
    for index in packed_order:
        length = len(examples[index].input_ids)
        torch.testing.assert_close(packed_logits[offset:offset + length],
                                   padded_logits[index, :length], atol=1e-5, rtol=1e-4)
        offset += length
    assert not torch.allclose(naive_logits, packed_logits, atol=1e-3)
    assert torch.equal(packed["labels"][0], torch.cat([torch.tensor(e.labels) for e in examples]))


def test_packing_fills_rows_without_splitting_examples(tiny_lm):
    _, examples = encoded_examples(tiny_lm, count=40)
    rows = pack(examples, capacity=64)
    assert sorted(n for row in rows for n in row.lengths) == sorted(
        len(e.input_ids) for e in examples)
    assert all(len(row.input_ids) <= 64 for row in rows)
    used = sum(len(row.input_ids) for row in rows) / (64 * len(rows))
    assert used > 0.8
    for row in rows:  # positions restart at 0 for every example
        starts = [i for i, p in enumerate(row.position_ids) if p == 0]
        assert [b - a for a, b in zip(starts, [*starts[1:], len(row.input_ids)], strict=True)] == row.lengths


def test_schedule_gives_every_rank_different_batches_and_is_repeatable():
    schedule = StepSchedule(num_items=50, batch_size=4, accumulation=2, world_size=2, seed=1)
    assert schedule.steps_per_epoch == 4  # 13 micro-batches over 2 ranks x 2
    first = [schedule.micro_batches(0, rank) for rank in (0, 1)]
    assert {i for b in first[0] for i in b}.isdisjoint(i for b in first[1] for i in b)
    again = StepSchedule(num_items=50, batch_size=4, accumulation=2, world_size=2, seed=1)
    assert again.micro_batches(5, 1) == schedule.micro_batches(5, 1)
    epoch = [i for step in range(4) for rank in (0, 1)
             for batch in schedule.micro_batches(step, rank) for i in batch]
    assert set(epoch) == set(range(50))
