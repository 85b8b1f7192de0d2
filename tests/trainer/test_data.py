"""Data preparation: formats, cleaning, bad rows by reason, loss masks, splits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from kubetune_trainer.data import DataSpec, load_examples, prepare_data
from kubetune_trainer.data.encode import IGNORE_INDEX, encode_causal
from kubetune_trainer.data.formats import Example
from kubetune_trainer.errors import InvalidDataset

from .helpers import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart" / "data"


@pytest.fixture
def tokenizer(tiny_lm):
    from kubetune_trainer.models import load_tokenizer

    return load_tokenizer(f"file://{tiny_lm}")


def uri(path: Path) -> str:
    return f"file://{path}"


def test_loss_mask_covers_exactly_the_assistant_turns(tokenizer):
    messages = [{"role": "system", "content": "say the number"},
                {"role": "user", "content": "which one is red ?"},
                {"role": "assistant", "content": "the red one is number one"},
                {"role": "user", "content": "which one is blue ?"},
                {"role": "assistant", "content": "the blue one is number three"}]
    encoded = encode_causal(tokenizer, Example(1, messages=messages))
    targets = [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
               if label != IGNORE_INDEX]
    assert tokenizer.decode(targets) == tokenizer.decode(
        tokenizer("the red one is number one</s> the blue one is number three</s>",
                  add_special_tokens=False)["input_ids"])
    context = [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
               if label == IGNORE_INDEX]
    assert "which one is red" in tokenizer.decode(context)
    assert "say the number" in tokenizer.decode(context)
    assert encoded.labels[0] == IGNORE_INDEX


def test_completion_trains_on_the_completion_only(tokenizer):
    encoded = encode_causal(tokenizer, Example(1, prompt="which one is red ?",
                                               completion="the red one"))
    targets = [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
               if label != IGNORE_INDEX]
    assert targets == tokenizer("the red one</s>", add_special_tokens=False)["input_ids"]


def test_every_bad_row_of_the_quickstart_file_is_reported_by_reason(tmp_path):
    loaded = load_examples(uri(QUICKSTART / "bad.jsonl"), task="sequence-classification",
                           drop_duplicates=True)
    report = loaded.report.to_json()
    assert report["rowsIn"] == 12
    assert report["dropped"] == {"duplicate": 1, "empty": 2, "malformed JSON": 3,
                                 "missing field": 2, "wrong type": 1}
    assert [s.split(":")[0] for s in report["droppedExamples"]["malformed JSON"]] == [
        "line 2", "line 8", "line 12"]
    assert report["droppedExamples"]["duplicate"] == ["line 6: duplicate of line 1"]


def test_unknown_labels_in_the_validation_set_are_counted(tokenizer):
    spec = DataSpec(uri=uri(QUICKSTART / "train.jsonl"), task="sequence-classification",
                    validation_uri=uri(QUICKSTART / "bad.jsonl"))
    data = prepare_data(spec, tokenizer)
    assert data.label_mapping.names == ("account_access", "billing", "delivery",
                                        "product_quality", "technical_support")
    validation = data.report["validation"]
    assert validation["dropped"]["unknown label"] == 1
    assert validation["droppedExamples"]["unknown label"] == ["line 4: unknown label 'shipping'"]
    assert validation["rowsOut"] == 2  # lines 1 and 7


def test_nothing_usable_left_raises_invalid_dataset(tokenizer, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text("not json\n{\"text\": \"\"}\n{\"other\": 1}\n")
    with pytest.raises(InvalidDataset, match="no usable rows") as error:
        prepare_data(DataSpec(uri=uri(path), format="text"), tokenizer)
    assert "malformed JSON: 1" in str(error.value) and "missing field: 1" in str(error.value)


def test_missing_dataset_is_invalid_dataset(tokenizer, tmp_path):
    with pytest.raises(InvalidDataset, match="not found"):
        prepare_data(DataSpec(uri=uri(tmp_path / "nope.jsonl")), tokenizer)


def test_duplicates_after_whitespace_normalisation_and_empty_rows_are_dropped(tokenizer, tmp_path):
    rows = [{"prompt": "which one", "completion": "red  one"},
            {"prompt": "which   one", "completion": "red one "},
            {"prompt": "which one", "completion": "   "},
            {"prompt": "which one", "completion": "blue one"}]
    data = prepare_data(DataSpec(uri=uri(write_jsonl(tmp_path / "c.jsonl", rows))), tokenizer)
    assert data.format == "completion"
    assert data.report["train"]["dropped"] == {"duplicate": 1, "empty": 1}
    assert data.report["train"]["rowsOut"] == 2


@pytest.mark.parametrize("policy", ["truncate", "drop"])
def test_over_length_examples_are_truncated_or_dropped(tokenizer, tmp_path, policy):
    rows = [{"text": "red " * n} for n in (3, 40)]
    spec = DataSpec(uri=uri(write_jsonl(tmp_path / "t.jsonl", rows)), max_tokens=10,
                    over_length=policy)
    data = prepare_data(spec, tokenizer)
    if policy == "truncate":
        assert sorted(len(e.input_ids) for e in data.train) == [4, 10]
    else:
        assert [len(e.input_ids) for e in data.train] == [4]
        assert data.report["train"]["dropped"] == {"too long": 1}


def test_field_mapping_and_format_detection(tokenizer, tmp_path):
    rows = [{"question": f"which one is red {i}", "answer": "the red one"} for i in range(4)]
    spec = DataSpec(uri=uri(write_jsonl(tmp_path / "q.jsonl", rows)),
                    fields={"instruction": "question", "output": "answer"})
    data = prepare_data(spec, tokenizer)
    assert data.format == "instruction" and len(data.train) == 4


def test_csv_json_and_parquet_read_the_same_rows(tokenizer, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": f"red one {i}", "label": "a" if i % 2 else "b"} for i in range(6)]
    with (tmp_path / "d.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "d.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    for name in ("d.csv", "d.json", "d.parquet"):
        loaded = load_examples(uri(tmp_path / name), task="sequence-classification")
        assert [(e.text, e.label) for e in loaded.examples] == [
            (r["text"], r["label"]) for r in rows], name


def test_split_is_fixed_by_the_seed(tokenizer, colour_data):
    def held_out(seed):
        spec = DataSpec(uri=uri(colour_data), split_ratio=0.1, seed=seed)
        return [e.line for e in prepare_data(spec, tokenizer).validation]

    assert held_out(1) == held_out(1)
    assert held_out(1) != held_out(2)
    assert len(held_out(1)) == 24


def test_classification_labels_are_mapped_to_ids_in_sorted_order(tokenizer, tmp_path):
    rows = [{"text": f"t {i}", "label": name} for i, name in enumerate(["zebra", "ant", "mole", "ant"])]
    data = prepare_data(DataSpec(uri=uri(write_jsonl(tmp_path / "l.jsonl", rows)),
                                 task="sequence-classification"), tokenizer)
    assert data.label_mapping.names == ("ant", "mole", "zebra")
    assert [e.label for e in data.train] == [2, 0, 1, 0]


def test_a_classification_validation_split_is_stratified_by_label():
    """90/10 of 5 classes with 100/50/30/15/5 examples: every class is held out in proportion
    (a random draw of 20 easily misses the 5-example class or doubles it)."""
    from collections import Counter

    from kubetune_trainer.data.encode import Encoded
    from kubetune_trainer.data.prepare import split

    counts = {0: 100, 1: 50, 2: 30, 3: 15, 4: 5}
    items = [Encoded(i, [1, 2, 3], label=label)
             for i, label in enumerate(lab for lab, n in counts.items() for _ in range(n))]
    for seed in range(5):
        train, held = split(items, 0.1, seed)
        assert len(held) == 20 and len(train) == 180
        per_class = Counter(item.label for item in held)
        assert per_class[0] == 10 and per_class[1] == 5 and per_class[2] == 3
        assert per_class[3] in (1, 2) and per_class[4] in (0, 1)
    # Causal-LM items (no label) are split at random, as before.
    plain = [Encoded(i, [1, 2], labels=[1, 2]) for i in range(30)]
    assert len(split(plain, 0.1, 0)[1]) == 3
