"""sequence-classification: label mapping, bad rows, seeded baselines, 1,000 classes."""

from __future__ import annotations

import json

import pytest
from kubetune_trainer.errors import InvalidDataset
from kubetune_trainer.eval import cli
from kubetune_trainer.eval.recipe import evaluate

from .conftest import QUICKSTART_DATA
from .helpers import build_tiny_classifier, classification_config, load, write_config, write_jsonl


def test_bad_rows_and_unknown_labels_are_reported_not_fatal(tiny_classifier, tmp_path):
    # bad.jsonl: 2 valid rows and a duplicate of one (kept: a test set's repeats count),
    # the rest malformed, empty, missing a field, or labelled "shipping" (not a model label).
    config = load(classification_config(f"file://{tiny_classifier}",
                                        f"file://{QUICKSTART_DATA / 'bad.jsonl'}", tmp_path / "out"))
    summary = evaluate(config)
    assert summary["phase"] == "Succeeded"
    assert summary["samples"] == 3
    assert summary["dropped"] == {"malformed JSON": 3, "missing field": 2, "empty": 2,
                                  "unknown label": 1, "wrong type": 1}
    assert "left out 9 rows" in summary["message"]
    assert "unknown label 1" in summary["message"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["classification"]["unknownLabels"] == {"shipping": 1}
    assert report["dataset"]["dropped"]["unknown label"] == 1
    assert any("'shipping'" in line
               for line in report["dataset"]["droppedExamples"]["unknown label"])


@pytest.mark.parametrize(("rows", "expected"), [
    ([{"text": "my parcel is late", "label": "shipping"},
      {"text": "refund me", "label": "refunds"}], "unknown label: 2"),
    ([{"text": "", "label": "billing"}, {"text": "   ", "label": "delivery"}], "empty: 2"),
    ([{"label": "billing"}, {"body": "refund me", "label": "billing"}], "missing field: 2"),
])
def test_nothing_usable_is_an_invalid_dataset_with_the_reason(tiny_classifier, tmp_path, rows,
                                                               expected):
    data = write_jsonl(tmp_path / "test.jsonl", rows)
    config = load(classification_config(f"file://{tiny_classifier}", f"file://{data}"))
    with pytest.raises(InvalidDataset, match=expected):
        evaluate(config)


def test_unusable_dataset_exits_2_with_reason_invalid_dataset(tiny_classifier, tmp_path):
    data = write_jsonl(tmp_path / "test.jsonl", [{"text": "where is my parcel", "label": "x"}])
    config_file = write_config(tmp_path / "config.json", classification_config(
        f"file://{tiny_classifier}", f"file://{data}"))
    assert cli.main(["--config", str(config_file)]) == 2
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["phase"] == "Failed"
    assert message["reason"] == "InvalidDataset"
    assert "unknown label" in message["message"]
    assert "the model's labels are: account_access, billing" in message["message"]


def test_a_headless_baseline_is_chance_scored_with_a_seeded_head_but_never_the_baseline(
        tiny_classifier, tiny_base, tmp_path):
    config = load(classification_config(
        f"file://{tiny_classifier}", f"file://{QUICKSTART_DATA / 'test.jsonl'}",
        tmp_path / "out", baseline={"uri": f"file://{tiny_base}"},
        dataset={"uri": f"file://{QUICKSTART_DATA / 'test.jsonl'}", "limit": 60}))
    first, second = evaluate(config), evaluate(config)
    assert first["results"] == second["results"]  # deterministic, intervals included
    assert first["baselines"] == second["baselines"]
    assert [b["name"] for b in first["baselines"]] == ["chance"]
    # An untrained head is reported, but nobody should mistake it for the bar to clear.
    assert all("baseline" not in row and "delta" not in row for row in first["results"])
    chance = {m["name"]: m for m in first["baselines"][0]["metrics"]}
    assert chance["f1"]["ciLow"] <= chance["f1"]["value"] <= chance["f1"]["ciHigh"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "seed" in report["baseline"]["note"]
    assert [c["label"] for c in report["classification"]["baselines"]["chance"]["perClass"]] \
        == report["classification"]["labels"]
    records = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").open()]
    assert len(records) == first["samples"] == 60
    assert {"label", "predicted", "confidence", "baselines"} <= records[0].keys()
    assert set(records[0]["baselines"]) == {"chance"}


def test_the_summary_stays_under_4_kib_with_1000_classes(minilm, tmp_path):
    labels = tuple(f"category-{i:04d}-" + "x" * 230 for i in range(1000))
    model = build_tiny_classifier(tmp_path / "model", minilm, labels)
    words = ["refund", "parcel", "broken", "login", "password", "charge", "courier",
             "screen", "app", "invoice"]
    rows = [{"text": f"{words[i % 10]} {words[(i * 7) % 10]} {i}", "label": labels[(i * 13) % 1000]}
            for i in range(1500)]
    data = write_jsonl(tmp_path / "test.jsonl", rows)
    config_file = write_config(tmp_path / "config.json", classification_config(
        f"file://{model}", f"file://{data}", tmp_path / "out", thresholds={"f1": 0.5}))
    assert cli.main(["--config", str(config_file)]) == 0
    text = (tmp_path / "termination-log").read_text()
    assert len(text.encode()) < 4096
    message = json.loads(text)
    assert message["samples"] == 1500
    assert [row["name"] for row in message["results"]] == ["accuracy", "precision", "recall", "f1"]
    assert message["passed"] is False
    assert message["errorAnalysis"]["confusion"]  # shortened, still there
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report["classification"]["model"]["perClass"]) == 1000
    assert len(report["classification"]["model"]["worstClasses"]) == 50
    # Above 100 classes the matrix is stored as its non-zero cells: one per scored example
    # at most, not a million.
    cells = report["classification"]["model"]["confusionMatrix"]["cells"]
    assert sum(cell["count"] for cell in cells) == 1500
