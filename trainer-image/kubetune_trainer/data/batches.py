"""Batches: which examples each rank trains on at each step, and how they become tensors.

The schedule is a pure function of (seed, epoch, step), so resuming from a checkpoint needs
only the step number to continue with exactly the batches an uninterrupted run would see.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch

from .encode import IGNORE_INDEX, Encoded, EncodedPair
from .packing import PackedRow


@dataclass
class StepSchedule:
    """Shuffled micro-batches per epoch, dealt to ranks `accumulation` at a time per step."""

    num_items: int
    batch_size: int
    accumulation: int
    world_size: int
    seed: int
    _epoch_batches: dict[int, list[list[int]]] = field(default_factory=dict, repr=False)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.num_items / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.batches_per_epoch / (self.world_size * self.accumulation)))

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        if epoch not in self._epoch_batches:
            order = list(range(self.num_items))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._epoch_batches = {epoch: [
                order[i:i + self.batch_size] for i in range(0, self.num_items, self.batch_size)
            ]}
        return self._epoch_batches[epoch]

    def micro_batches(self, step: int, rank: int) -> list[list[int]]:
        """The micro-batches (lists of item indices) that `rank` runs at global `step`.

        The last step of an epoch wraps around to the epoch's first batches, so every rank
        always has `accumulation` micro-batches and no collective waits on a rank without work.
        """
        epoch, index = divmod(step, self.steps_per_epoch)
        batches = self.epoch_batches(epoch)
        start = (index * self.world_size + rank) * self.accumulation
        return [batches[(start + j) % len(batches)] for j in range(self.accumulation)]


def collate_packed(rows: list[PackedRow], pad_id: int,
                   width: int | None = None) -> dict[str, torch.Tensor]:
    """Packed rows padded to the longest (or to `width`: one shape for kernels compiled per
    shape); the padding is its own segment and never a target."""
    width = max(width or 0, *(len(row.input_ids) for row in rows))
    input_ids, labels, positions = [], [], []
    for row in rows:
        gap = width - len(row.input_ids)
        input_ids.append(row.input_ids + [pad_id] * gap)
        labels.append(row.labels + [IGNORE_INDEX] * gap)
        positions.append(row.position_ids + list(range(gap)))
    return {
        "input_ids": torch.tensor(input_ids),
        "position_ids": torch.tensor(positions),
        "labels": torch.tensor(labels),
        "real_tokens": torch.tensor(sum(len(row.input_ids) for row in rows)),
    }


def collate_flattened(rows: list[PackedRow]) -> dict[str, torch.Tensor]:
    """Packed rows laid end to end as one row of shape (1, total tokens), no padding at all:
    transformers' flash-attention path finds the examples (cu_seqlens) from the restarting
    position ids only when the batch is a single row. Every example's first label is
    IGNORE_INDEX (`encode`), so no target crosses from one row into the next."""
    input_ids, labels, positions = [], [], []
    for row in rows:
        input_ids += row.input_ids
        labels += row.labels
        positions += row.position_ids
    return {
        "input_ids": torch.tensor([input_ids]),
        "position_ids": torch.tensor([positions]),
        "labels": torch.tensor([labels]),
        "real_tokens": torch.tensor(len(input_ids)),
    }


def collate_padded(examples: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with an attention mask: causal LM without packing, and classification."""
    width = max(len(example.input_ids) for example in examples)
    input_ids, mask, labels, token_types = [], [], [], []
    for example in examples:
        gap = width - len(example.input_ids)
        input_ids.append(example.input_ids + [pad_id] * gap)
        mask.append([1] * len(example.input_ids) + [0] * gap)
        if example.labels is not None:
            labels.append(example.labels + [IGNORE_INDEX] * gap)
        if example.token_type_ids is not None:
            token_types.append(example.token_type_ids + [0] * gap)
    batch = {
        "input_ids": torch.tensor(input_ids),
        "attention_mask": torch.tensor(mask),
        "real_tokens": torch.tensor(sum(len(example.input_ids) for example in examples)),
    }
    if examples[0].labels is not None:
        batch["labels"] = torch.tensor(labels)
    else:
        batch["labels"] = torch.tensor([example.label for example in examples])
    if token_types:
        batch["token_type_ids"] = torch.tensor(token_types)
    return batch


def collate_pairs(pairs: list[EncodedPair], pad_id: int) -> dict[str, torch.Tensor]:
    """n preference pairs as 2n right-padded sequences, [chosen_1..n, rejected_1..n] (the
    layout preference.dpo_loss splits)."""
    batch = collate_padded([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id)
    batch["pairs"] = torch.tensor(len(pairs))
    return batch
