"""From dataset URIs to tokenized training and validation examples, plus the data report.

    load_examples(uri, ...)   read + parse one file: the evaluator uses this too
    prepare_data(spec, tok)   the whole pipeline for training: read, parse, clean,
                              label, tokenize, fit the length, split

Bad rows are counted by reason and left out; only when nothing usable is left does the run
end, with InvalidDataset.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .. import storage
from ..errors import InvalidDataset
from .encode import (
    Encoded,
    EncodedPair,
    encode_causal,
    encode_classification,
    encode_pair,
    fit_length,
)
from .formats import Example, detect_format, normalise, to_examples
from .labels import LabelMapping, build_label_mapping
from .readers import BadRow, read_rows
from .report import SplitReport


@dataclass
class DataSpec:
    """What data preparation needs to know (spec.dataset plus a few hyperparameters)."""

    uri: str
    task: str = "causal-lm"
    format: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    max_seq_length: int = 2048
    max_tokens: int | None = None
    over_length: str = "truncate"
    drop_empty: bool = True
    drop_duplicates: bool = True
    validation_uri: str | None = None
    split_ratio: float | None = None
    seed: int = 42
    num_labels: int | None = None
    preference: bool = False
    """Preference pairs (method dpo) rather than supervised examples, from a feedback file."""

    @classmethod
    def from_config(cls, config) -> DataSpec:
        """Build from a kubetune.api TrainerConfig."""
        dataset, hyper = config.dataset, config.hyperparameters
        validation = dataset.validation
        return cls(
            uri=dataset.uri,
            task=config.model.task,
            format=dataset.format,
            fields=dict(dataset.fields or {}),
            max_seq_length=hyper.max_seq_length,
            max_tokens=dataset.cleaning.max_tokens,
            over_length=dataset.cleaning.over_length,
            drop_empty=dataset.cleaning.drop_empty,
            drop_duplicates=dataset.cleaning.drop_duplicates,
            validation_uri=validation.uri if validation else None,
            split_ratio=validation.split_ratio if validation else None,
            seed=hyper.seed,
            num_labels=config.model.num_labels,
            preference=config.method.type == "dpo",
        )

    @property
    def token_limit(self) -> int:
        return min(self.max_tokens or self.max_seq_length, self.max_seq_length)


@dataclass
class LoadedExamples:
    format: str
    examples: list[Example]
    report: SplitReport
    content_hash: str


@dataclass
class PreparedData:
    format: str
    train: list[Encoded] | list[EncodedPair]
    validation: list[Encoded] | list[EncodedPair]
    label_mapping: LabelMapping | None
    report: dict


def load_examples(
    uri: str,
    *,
    task: str = "causal-lm",
    format: str | None = None,
    fields: dict[str, str] | None = None,
    drop_empty: bool = True,
    drop_duplicates: bool = False,
    preference: bool = False,
) -> LoadedExamples:
    """Read and parse the dataset at `uri`; bad rows are counted in the report, not raised.
    `preference`: a feedback file gives preference pairs, not supervised examples."""
    try:
        path = storage.fetch(uri)
    except storage.NotFound as error:
        raise InvalidDataset(f"dataset not found at {uri}") from error
    content_hash = storage.content_hash(path)
    rows, bad = read_rows(path)
    report = SplitReport(rows_in=len(rows) + len(bad))
    for item in bad:
        report.drop(item)
    fmt = format or detect_format(rows, task, fields)
    examples, bad = to_examples(rows, fmt, fields, preference=preference)
    for item in bad:
        report.drop(item)
    kept: list[Example] = []
    seen: dict[str, int] = {}
    for example in examples:
        if drop_empty and example.is_empty():
            report.drop(BadRow(example.line, "empty", f"line {example.line}: empty text"))
            continue
        if example.is_pair and normalise(example.chosen) == normalise(example.rejected):
            report.drop(BadRow(example.line, "identical pair",
                               f"line {example.line}: chosen and rejected are the same text"))
            continue
        if drop_duplicates:
            key = example.content_key()
            if key in seen:
                report.drop(BadRow(example.line, "duplicate",
                                   f"line {example.line}: duplicate of line {seen[key]}"))
                continue
            seen[key] = example.line
        kept.append(example)
    return LoadedExamples(fmt, kept, report, content_hash)


def label_ids(
    examples: list[Example], mapping: LabelMapping, report: SplitReport
) -> list[tuple[Example, int]]:
    """Pair examples with their label id; labels outside the mapping are dropped and counted."""
    labelled = []
    for example in examples:
        label_id = mapping.id_of(example.label)
        if label_id is None:
            report.drop(BadRow(example.line, "unknown label",
                               f"line {example.line}: unknown label {example.label!r}"))
            continue
        labelled.append((example, label_id))
    return labelled


def _encode(
    examples: list[Example], spec: DataSpec, tokenizer, mapping: LabelMapping | None,
    report: SplitReport,
) -> list[Encoded]:
    limit = spec.token_limit
    encoded: list[Encoded] = []
    if spec.task == "sequence-classification":
        # The tokenizer truncates classification text itself; "drop" needs the full length.
        for example, label_id in label_ids(examples, mapping, report):
            item = encode_classification(tokenizer, example, label_id, max_length=10**9)
            fitted = fit_length(item, limit, spec.over_length)
            if fitted is None:
                report.drop(BadRow(example.line, "too long",
                                   f"line {example.line}: {len(item.input_ids)} tokens > {limit}"))
                continue
            encoded.append(fitted)
    elif spec.preference:
        for example in examples:
            pair = encode_pair(tokenizer, example)
            length = pair.length
            chosen = fit_length(pair.chosen, limit, spec.over_length)
            rejected = fit_length(pair.rejected, limit, spec.over_length)
            if chosen is None or rejected is None:
                report.drop(BadRow(example.line, "too long",
                                   f"line {example.line}: {length} tokens > {limit}"))
                continue
            if not chosen.trainable_tokens or not rejected.trainable_tokens:
                report.drop(BadRow(example.line, "no target tokens",
                                   f"line {example.line}: nothing left to compare after "
                                   f"truncating to {limit} tokens"))
                continue
            encoded.append(EncodedPair(example.line, chosen, rejected))
    else:
        for example in examples:
            item = encode_causal(tokenizer, example)
            length = len(item.input_ids)
            fitted = fit_length(item, limit, spec.over_length)
            if fitted is None:
                report.drop(BadRow(example.line, "too long",
                                   f"line {example.line}: {length} tokens > {limit}"))
                continue
            if fitted.trainable_tokens == 0:
                report.drop(BadRow(example.line, "no target tokens",
                                   f"line {example.line}: nothing left to learn after "
                                   f"truncating to {limit} tokens"))
                continue
            encoded.append(fitted)
    for item in encoded:
        report.lengths.append(item_length(item))
        report.trainable_tokens += item.trainable_tokens
    return encoded


def item_length(item: Encoded | EncodedPair) -> int:
    """Tokens of an example; of a pair, its longer side."""
    return item.length if isinstance(item, EncodedPair) else len(item.input_ids)


def prepare_data(spec: DataSpec, tokenizer) -> PreparedData:
    train = load_examples(spec.uri, task=spec.task, format=spec.format, fields=spec.fields,
                          drop_empty=spec.drop_empty, drop_duplicates=spec.drop_duplicates,
                          preference=spec.preference)
    validation = None
    if spec.validation_uri:
        validation = load_examples(
            spec.validation_uri, task=spec.task, format=train.format, fields=spec.fields,
            drop_empty=spec.drop_empty, drop_duplicates=spec.drop_duplicates,
            preference=spec.preference,
        )
    mapping = None
    if spec.task == "sequence-classification":
        if not train.examples:
            _raise_nothing_left(spec.uri, train.report)
        mapping = build_label_mapping([e.label for e in train.examples], spec.num_labels)
    train_encoded = _encode(train.examples, spec, tokenizer, mapping, train.report)
    if not train_encoded:
        _raise_nothing_left(spec.uri, train.report)
    report = {
        "dataset": {"uri": spec.uri, "contentHash": train.content_hash},
        "format": train.format,
        "labels": list(mapping.names) if mapping else None,
    }
    if spec.preference:
        report["examples"] = "preference pairs (prompt, chosen, rejected)"
    if validation is not None:
        validation_encoded = _encode(validation.examples, spec, tokenizer, mapping,
                                     validation.report)
        report["validationDataset"] = {"uri": spec.validation_uri,
                                       "contentHash": validation.content_hash}
    elif spec.split_ratio and len(train_encoded) >= 2:
        train_encoded, validation_encoded = split(train_encoded, spec.split_ratio, spec.seed)
        validation = LoadedExamples(train.format, [], SplitReport(), train.content_hash)
        validation.report.lengths = [item_length(item) for item in validation_encoded]
        validation.report.trainable_tokens = sum(i.trainable_tokens for i in validation_encoded)
        validation.report.rows_in = len(validation_encoded)
        # The training report describes what is trained on: the held-out rows leave it.
        train.report.lengths = [item_length(item) for item in train_encoded]
        train.report.trainable_tokens = sum(item.trainable_tokens for item in train_encoded)
        report["splitRatio"] = spec.split_ratio
    else:
        validation_encoded = []
    report["train"] = train.report.to_json()
    if validation is not None:
        report["validation"] = validation.report.to_json()
    return PreparedData(train.format, train_encoded, validation_encoded, mapping, report)


def split(items: list[Encoded], ratio: float, seed: int) -> tuple[list[Encoded], list[Encoded]]:
    """Hold out round(ratio * n) items (at least 1) chosen with a fixed seed.

    Classification items are split stratified by label (scikit-learn), so every class is
    held out in proportion and eval accuracy is not skewed by a lucky draw; when that is
    impossible (a class with one example, fewer held-out items than classes) the split is
    plain random.
    """
    held = max(1, min(len(items) - 1, round(ratio * len(items))))
    held_out = _stratified(items, held, seed)
    if held_out is None:
        order = list(range(len(items)))
        random.Random(seed).shuffle(order)
        held_out = set(order[:held])
    return ([item for i, item in enumerate(items) if i not in held_out],
            [item for i, item in enumerate(items) if i in held_out])


def _stratified(items: list[Encoded], held: int, seed: int) -> set[int] | None:
    labels = [item.label for item in items]
    if any(label is None for label in labels):
        return None  # causal LM: nothing to stratify by
    from sklearn.model_selection import train_test_split

    try:
        _, chosen = train_test_split(list(range(len(items))), test_size=held,
                                     random_state=seed, stratify=labels)
    except ValueError:
        return None
    return set(chosen)


def _raise_nothing_left(uri: str, report: SplitReport) -> None:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in report.dropped.most_common())
    first = next(iter(report.samples.values()), [""])[0]
    raise InvalidDataset(
        f"no usable rows in {uri} ({report.rows_in} read; dropped {reasons or 'none'})"
        + (f"; e.g. {first}" if first else "")
    )
