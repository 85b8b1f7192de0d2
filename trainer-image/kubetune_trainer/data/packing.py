"""Packing: several short examples in one sequence, so that a step carries few padding tokens.

Examples never see each other: every example's position ids start again at 0, and the
model is called with position ids and *no* attention mask, which transformers turns into a
block-diagonal causal mask (sdpa/eager) or a varlen flash-attention call. The model must also
run with use_cache=False; with a cache, transformers skips the packed-sequence detection.
tests/trainer/test_packing.py checks that packed logits equal padded ones.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .encode import Encoded


@dataclass
class PackedRow:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    lengths: list[int]


def pack(examples: list[Encoded], capacity: int) -> list[PackedRow]:
    """Best-fit-decreasing bin packing of examples into rows of at most `capacity` tokens.

    Deterministic for a given input order. Within a row, examples keep their input order.
    """
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    bins: list[list[int]] = []
    # (free space, bin index) kept sorted, so the tightest bin that fits is one bisect away.
    free: list[tuple[int, int]] = []
    for index in order:
        size = min(len(examples[index].input_ids), capacity)
        slot = bisect.bisect_left(free, (size, -1))
        if slot < len(free):
            space, bin_index = free.pop(slot)
        else:
            space, bin_index = capacity, len(bins)
            bins.append([])
        bins[bin_index].append(index)
        bisect.insort(free, (space - size, bin_index))
    rows = []
    for members in bins:
        row = PackedRow([], [], [], [])
        for index in sorted(members):
            example = examples[index]
            ids = example.input_ids[:capacity]
            row.input_ids += ids
            row.labels += example.labels[:capacity]
            row.position_ids += list(range(len(ids)))
            row.lengths.append(len(ids))
        rows.append(row)
    return rows
