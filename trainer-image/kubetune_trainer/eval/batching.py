"""Batches of similar length: the evaluator's one trick for speed.

Sorting by length before batching means each batch is padded only to the length of its own
longest example, not the dataset's, so little compute goes to padding. Results are put back
in dataset order by index, so sorting changes nothing but speed.
"""

from __future__ import annotations

from collections.abc import Sequence


def length_sorted_batches(
    lengths: Sequence[int], max_items: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Indices into `lengths`, grouped into batches of at most `max_items` examples and (when
    set) at most `max_tokens` padded tokens, longest examples first.

    Longest first: the batch most likely to run out of memory runs at once, not after an
    hour of work. An example longer than `max_tokens` still gets a batch of its own.
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # The batch is padded to its first (longest) member.
        width = lengths[current[0]] if current else lengths[index]
        too_many = len(current) >= max_items
        too_wide = max_tokens is not None and (len(current) + 1) * width > max_tokens
        if current and (too_many or too_wide):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def scatter(batches: list[list[int]], results: list[list], total: int) -> list:
    """Per-batch results back in dataset order."""
    out: list = [None] * total
    for indices, values in zip(batches, results, strict=True):
        for index, value in zip(indices, values, strict=True):
            out[index] = value
    return out
