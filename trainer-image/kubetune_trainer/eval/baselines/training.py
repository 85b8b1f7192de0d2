"""The training data baselines are fitted on and the leakage check compares with.

Read by the trainer's data layer with the FinetuneJob's own cleaning defaults (empty and
duplicate rows dropped), so a baseline learns from the rows the finetune learned from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ...data.formats import Example
from ...data.labels import LabelMapping
from ...data.prepare import load_examples
from ...errors import InvalidDataset


@dataclass
class TrainingSet:
    uri: str
    examples: list[Example]
    texts: list[str]  # what a baseline reads, or what the leakage check compares
    lines: list[int]
    label_ids: list[int] = field(default_factory=list)  # classification only
    unknown_labels: Counter = field(default_factory=Counter)


def content_text(example: Example) -> str:
    """All of an example's text, for the leakage check."""
    if example.messages is not None:
        return "\n".join(m["content"] for m in example.messages)
    if example.is_pair:
        return f"{example.prompt or ''}\n{example.chosen}\n{example.rejected}"
    if example.prompt is not None or example.completion is not None:
        return f"{example.prompt or ''}\n{example.completion or ''}"
    return example.text or ""


def load_training(training, task: str, mapping: LabelMapping | None) -> TrainingSet:
    """`training` is a kubetune.api BaselineTraining; labels go through the model's mapping."""
    loaded = load_examples(training.uri, task=task, format=training.format,
                           fields=dict(training.fields or {}), drop_empty=True,
                           drop_duplicates=True, preference=training.format == "feedback")
    if not loaded.examples:
        raise InvalidDataset(f"baseline training data {training.uri}: no usable rows "
                             f"({loaded.report.rows_in} read)")
    if task != "sequence-classification" or mapping is None:
        return TrainingSet(training.uri, loaded.examples,
                           [content_text(e) for e in loaded.examples],
                           [e.line for e in loaded.examples])
    examples, ids, unknown = [], [], Counter()
    for example in loaded.examples:
        label_id = mapping.id_of(example.label)
        if label_id is None:
            unknown[str(example.label)] += 1
            continue
        examples.append(example)
        ids.append(label_id)
    if len(set(ids)) < 2:
        raise InvalidDataset(f"baseline training data {training.uri}: fewer than 2 of the "
                             "model's labels occur in it; cannot fit a baseline")
    return TrainingSet(training.uri, examples, [e.text or "" for e in examples],
                       [e.line for e in examples], ids, unknown)
