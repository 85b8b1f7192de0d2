"""The evaluation set: read and parsed by the trainer's data layer, then shaped for scoring.

Reading, format detection, field mapping and row checks are the trainer's
(`kubetune_trainer.data.prepare.load_examples`), so a file that trains also evaluates and a
bad row is reported the same way. What differs here:

- duplicates are kept: a test set's repeated rows are real test cases;
- classification labels are mapped through the label mapping saved with the model under
  test, and a label that mapping lacks is counted ("unknown label"), not fatal;
- causal-lm examples are split into the prompt a model is asked and the reference it should
  answer, next to the token labels the trainer trains on (for loss and perplexity).

Only when nothing usable is left does the run stop, with InvalidDataset (exit code 2).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..data.encode import IGNORE_INDEX, Encoded, encode_causal, fit_length
from ..data.formats import Example
from ..data.labels import LabelMapping
from ..data.prepare import load_examples
from ..data.readers import BadRow
from ..data.report import SplitReport
from ..errors import InvalidDataset


@dataclass
class EvalData:
    uri: str
    format: str
    examples: list[Example]
    report: SplitReport
    content_hash: str
    limited: int = 0  # usable rows left out by dataset.limit

    def to_json(self) -> dict:
        """The dataset section of the report."""
        return {
            "uri": self.uri,
            "contentHash": self.content_hash,
            "format": self.format,
            "rowsIn": self.report.rows_in,
            "dropped": dict(sorted(self.report.dropped.items())),
            "droppedExamples": self.report.samples,
            "leftOutByLimit": self.limited,
        }


def load_eval_data(dataset, task: str) -> EvalData:
    """Read `dataset` (a kubetune.api EvalDataset) for `task`."""
    # A feedback file is scored as preference pairs (chosen over rejected).
    loaded = load_examples(
        dataset.uri, task=task, format=dataset.format, fields=dict(dataset.fields or {}),
        drop_empty=True, drop_duplicates=False, preference=dataset.format == "feedback",
    )
    examples = loaded.examples
    limited = 0
    if dataset.limit and len(examples) > dataset.limit:
        limited = len(examples) - dataset.limit
        examples = examples[: dataset.limit]
    data = EvalData(dataset.uri, loaded.format, examples, loaded.report, loaded.content_hash,
                    limited)
    if not examples:
        raise_nothing_usable(data)
    return data


def raise_nothing_usable(data: EvalData, extra: str = "") -> None:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in data.report.dropped.most_common())
    first = next(iter(data.report.samples.values()), [""])[0]
    raise InvalidDataset(
        f"no usable rows in {data.uri} ({data.report.rows_in} read; dropped "
        f"{reasons or 'none'})" + (f"; e.g. {first}" if first else "") + extra
    )


# ---------------------------------------------------------------------------------------------
# Classification


@dataclass
class LabelledSet:
    """Examples whose label the model knows, with that label's id."""

    examples: list[Example]
    label_ids: list[int]
    unknown: Counter = field(default_factory=Counter)  # label -> rows


def label_examples(data: EvalData, mapping: LabelMapping) -> LabelledSet:
    """Map each example's label to an id of the model's mapping; count the ones it lacks."""
    kept, ids, unknown = [], [], Counter()
    for example in data.examples:
        label_id = mapping.id_of(example.label)
        if label_id is None:
            unknown[str(example.label)] += 1
            data.report.drop(BadRow(example.line, "unknown label",
                                    f"line {example.line}: label {example.label!r} is not one "
                                    "of the model's labels"))
            continue
        kept.append(example)
        ids.append(label_id)
    if not kept:
        known = ", ".join(mapping.names[:20]) + (" ..." if len(mapping.names) > 20 else "")
        raise_nothing_usable(data, f"; the model's labels are: {known}")
    return LabelledSet(kept, ids, unknown)


# ---------------------------------------------------------------------------------------------
# Causal LM


@dataclass
class CausalItem:
    """One causal-lm example, tokenized for one model.

    `encoded` holds the ids and the trainer's token labels (loss on the answer tokens only);
    `prompt_ids` is everything before the last answer, what generation starts from;
    `reference` is that answer's text, or None for plain-text rows (nothing to generate).
    """

    line: int
    encoded: Encoded
    prompt_ids: list[int]
    reference: str | None
    prompt_text: str


def reference_of(example: Example) -> tuple[str, str | None]:
    """(prompt text for the report, reference answer) of an example."""
    if example.messages is not None:
        last = max(i for i, m in enumerate(example.messages) if m["role"] == "assistant")
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in example.messages[:last])
        return prompt, example.messages[last]["content"]
    if example.prompt is not None:
        return example.prompt, example.completion
    return example.text or "", None


def last_target_start(labels: list[int]) -> int:
    """Index of the first token of the last run of target (non-ignored) labels."""
    end = max((i for i, label in enumerate(labels) if label != IGNORE_INDEX), default=-1)
    if end < 0:
        return len(labels)
    start = end
    while start > 0 and labels[start - 1] != IGNORE_INDEX:
        start -= 1
    return start


def causal_items(examples: list[Example], tokenizer, max_length: int) -> list[CausalItem]:
    """Tokenize for one model, exactly as the trainer does, truncated to what the model takes."""
    items = []
    for example in examples:
        encoded = encode_causal(tokenizer, example)
        prompt_ids = encoded.input_ids[: last_target_start(encoded.labels)]
        # Truncating never drops the example: its loss is over whatever answer tokens fit.
        encoded = fit_length(encoded, max_length, "truncate")
        prompt_text, reference = reference_of(example)
        items.append(CausalItem(example.line, encoded, prompt_ids, reference, prompt_text))
    return items
