"""`kubetune validate`: every bad input of the foundation issue exits 1 naming the field."""

from __future__ import annotations

import io
import sys

import pytest
import yaml
from kubetune.cli import main

from .manifests import DELETE, EVAL_JOB, FINETUNE_JOB, changed


def validate(tmp_path, capsys, *docs, raw: str | None = None) -> tuple[int, str]:
    path = tmp_path / "manifest.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump_all(docs))
    code = main(["validate", "-f", str(path)])
    return code, capsys.readouterr().out


def test_examples_folder_is_valid(repo_root, capsys):
    assert main(["validate", "-f", str(repo_root / "examples")]) == 0
    assert "valid" in capsys.readouterr().out


def test_the_base_manifests_are_valid(tmp_path, capsys):
    assert validate(tmp_path, capsys, FINETUNE_JOB, EVAL_JOB) == (0, "2 documents valid\n")


BAD_FINETUNE_JOBS = [
    ("unknown field", "spec.hyperparameters.lerningRate", 1e-4,
     "spec.hyperparameters.lerningRate: is not a known field; did you mean learningRate?"),
    ("wrong type", "spec.hyperparameters.epochs", "three", "spec.hyperparameters.epochs: must be"),
    ("missing required field", "spec.model.uri", DELETE, "spec.model.uri: is required"),
    ("learningRate <= 0", "spec.hyperparameters.learningRate", 0,
     "spec.hyperparameters.learningRate: must be > 0"),
    ("batchSize < 1", "spec.hyperparameters.batchSize", 0,
     "spec.hyperparameters.batchSize: must be >= 1"),
    ("splitRatio above 0.5", "spec.dataset.validation.splitRatio", 0.7,
     "spec.dataset.validation.splitRatio: must be <= 0.5"),
    ("splitRatio zero", "spec.dataset.validation.splitRatio", 0,
     "spec.dataset.validation.splitRatio: must be > 0"),
    ("validation uri and splitRatio", "spec.dataset.validation",
     {"uri": "s3://datasets/val.jsonl", "splitRatio": 0.1},
     "spec.dataset.validation: set exactly one of uri and splitRatio"),
    ("numLabels < 2", "spec.model.numLabels", 1, "spec.model.numLabels: must be >= 2"),
    ("unknown scheme", "spec.dataset.uri", "gs://bucket/train.jsonl",
     "spec.dataset.uri: must be one of hf://ORG/NAME[@REVISION], s3://BUCKET/PREFIX"),
    ("empty bucket", "spec.output.uri", "s3:///models/", "spec.output.uri: must name a bucket"),
    ("pvc without path", "spec.dataset.uri", "pvc://datasets",
     "spec.dataset.uri: must name a path inside the claim"),
    ("name too long", "metadata.name", "f" * 54, "metadata.name: must be at most 53 characters"),
    ("name not a DNS label", "metadata.name", "Feedback_Router", "metadata.name: must consist of"),
    ("threshold on a metric the task lacks", "spec.evaluation.thresholds", {"rougeL": 0.3},
     "'rougeL' is not a metric of task sequence-classification"),
]


@pytest.mark.parametrize(("case", "path", "value", "says"), BAD_FINETUNE_JOBS,
                         ids=[c[0] for c in BAD_FINETUNE_JOBS])
def test_bad_finetune_job_is_rejected_naming_the_field(tmp_path, capsys, case, path, value, says):
    doc = changed(FINETUNE_JOB, path, value)
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1
    assert says in out
    assert out.startswith(f"{doc['metadata']['name']}: ")


def test_epochs_and_max_steps_both_zero(tmp_path, capsys):
    doc = changed(FINETUNE_JOB, "spec.hyperparameters",
                  {"epochs": 0, "maxSteps": 0, "learningRate": 0.001})
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1
    assert "spec.hyperparameters: epochs and maxSteps must not both be 0" in out


def test_qlora_needs_gpus(tmp_path, capsys):
    doc = changed(changed(FINETUNE_JOB, "spec.method.type", "qlora"), "spec.resources.gpus", 0)
    code, out = validate(tmp_path, capsys, doc)
    assert (code, out.strip()) == (
        1, "feedback-router: spec: method.type qlora needs GPUs: resources.gpus must be > 0")


def test_packing_is_an_error_for_classification(tmp_path, capsys):
    doc = changed(FINETUNE_JOB, "spec.hyperparameters.packing", True)
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1
    assert "hyperparameters.packing must not be true for task sequence-classification" in out


@pytest.mark.parametrize("model", [
    {"uri": "s3://models/x/", "finetuneJobRef": {"name": "feedback-router"}},
    {"task": "causal-lm"},
], ids=["both", "neither"])
def test_eval_job_needs_exactly_one_model_source(tmp_path, capsys, model):
    doc = changed(changed(EVAL_JOB, "spec.model", model), "spec.compareBaseline", DELETE)
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1
    assert "feedback-router-eval: spec.model: set exactly one of uri and finetuneJobRef" in out


def test_eval_job_threshold_must_belong_to_its_task(tmp_path, capsys):
    doc = changed(EVAL_JOB, "spec.model", {"uri": "s3://models/x/", "task": "causal-lm"})
    doc = changed(changed(doc, "spec.thresholds", {"f1": 0.9}), "spec.compareBaseline", DELETE)
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1
    assert "spec.thresholds: 'f1' is not a metric of task causal-lm" in out


def test_a_file_that_is_not_yaml(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, raw="spec: [unclosed\n  - : :\n")
    assert code == 1
    assert "manifest.yaml: line" in out and "is not valid YAML" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("doc", [
    ["a", "list"], {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
    {"apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob"},
], ids=["not-a-mapping", "other-kind", "no-metadata-no-spec"])
def test_documents_of_the_wrong_shape(tmp_path, capsys, doc):
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1 and out.strip()


def test_several_problems_each_get_a_line(tmp_path, capsys):
    doc = changed(changed(FINETUNE_JOB, "spec.hyperparameters.batchSize", 0),
                  "spec.hyperparameters.learningRate", -1)
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1
    assert len(out.strip().splitlines()) == 2


def test_reads_standard_input(monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO(yaml.safe_dump(FINETUNE_JOB).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["validate", "-f", "-"]) == 0


def test_missing_file_is_a_problem_not_a_traceback(tmp_path, capsys):
    assert main(["validate", "-f", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot be read" in capsys.readouterr().out


CAUSAL_EVAL = changed(changed(changed(
    EVAL_JOB, "spec.model", {"uri": "s3://models/x/", "task": "causal-lm"}),
    "spec.compareBaseline", DELETE), "spec.thresholds", DELETE)


@pytest.mark.parametrize(("benchmarks", "says"), [
    ([{"task": "arc_easy", "uri": "s3://bench/mc.jsonl", "format": "multiple-choice"}],
     "spec.benchmarks[0]: set exactly one of task and uri"),
    ([{"numFewshot": 5}], "spec.benchmarks[0]: set exactly one of task and uri"),
    ([{"uri": "s3://bench/mc.jsonl"}],
     "spec.benchmarks[0].format: a custom task (uri) needs format: multiple-choice"),
    ([{"task": "arc_easy", "format": "multiple-choice"}],
     "spec.benchmarks[0].format: format is for a custom task (uri)"),
    ([{"uri": "s3://bench/mc.jsonl", "format": "open-ended"}],
     "spec.benchmarks[0].format: must be one of 'multiple-choice'"),
    ([{"task": "arc_easy", "numFewshot": -1}], "spec.benchmarks[0].numFewshot: must be >= 0"),
    ([{"task": "arc_easy", "limit": 0}], "spec.benchmarks[0].limit: must be >= 1"),
    ([{"task": "arc easy; rm -rf"}], "spec.benchmarks[0].task: must match"),
    ([{"task": "arc_easy"}, {"task": "arc_easy", "numFewshot": 5}],
     "spec.benchmarks: task 'arc_easy' is listed twice"),
], ids=["task-and-uri", "neither", "uri-without-format", "format-with-task", "bad-format",
        "negative-fewshot", "zero-limit", "bad-task-name", "twice"])
def test_bad_benchmarks_are_rejected_naming_the_field(tmp_path, capsys, benchmarks, says):
    code, out = validate(tmp_path, capsys, changed(CAUSAL_EVAL, "spec.benchmarks", benchmarks))
    assert code == 1
    assert says in out


def test_benchmarks_of_a_classifier_are_rejected(tmp_path, capsys):
    doc = changed(changed(CAUSAL_EVAL, "spec.model.task", "sequence-classification"),
                  "spec.metrics", DELETE)
    doc = changed(doc, "spec.benchmarks", [{"task": "arc_easy"}])
    code, out = validate(tmp_path, capsys, doc)
    assert code == 1
    assert "spec.benchmarks: benchmarks score a causal-lm; this model is " \
           "sequence-classification" in out


def test_benchmarks_and_their_data_are_valid(tmp_path, capsys):
    doc = changed(CAUSAL_EVAL, "spec.benchmarks", [
        {"task": "arc_easy", "numFewshot": 25, "limit": 200},
        {"uri": "pvc://bench/legal-mc.jsonl", "format": "multiple-choice", "name": "legal"}])
    doc = changed(doc, "spec.benchmarkData", {"uri": "pvc://bench/hf-datasets"})
    assert validate(tmp_path, capsys, doc) == (0, "1 document valid\n")


def test_benchmark_thresholds_name_a_task_of_spec_benchmarks(tmp_path, capsys):
    doc = changed(CAUSAL_EVAL, "spec.benchmarks", [{"task": "arc_easy"}])
    good = changed(doc, "spec.thresholds", {"arc_easy/acc": {"beatBaseline": True},
                                            "perplexity": 20})
    assert validate(tmp_path, capsys, good) == (0, "1 document valid\n")
    code, out = validate(tmp_path, capsys, changed(doc, "spec.thresholds", {"hellaswag/acc": 0.5}))
    assert code == 1
    assert ("spec.thresholds: 'hellaswag/acc' names no task of spec.benchmarks (have: "
            "arc_easy)") in out
    # Without benchmarks a name with a slash is no metric at all.
    code, out = validate(tmp_path, capsys, changed(CAUSAL_EVAL, "spec.thresholds",
                                                   {"arc_easy/acc": 0.5}))
    assert code == 1
    assert "spec.thresholds: 'arc_easy/acc' is not a metric of task causal-lm" in out
