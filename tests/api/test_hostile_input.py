"""`kubetune validate` and the operator's spec check on careless and hostile input (issue 19):
every independent problem once, at one path; duplicate keys refused; bounded input; never a
traceback, whatever the bytes."""

from __future__ import annotations

import io
import sys
from datetime import timedelta

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubetune import validation
from kubetune.cli import main
from kubetune.operator.reconcile import spec_problems

from .manifests import EVAL_JOB, FINETUNE_JOB, changed


def validate_text(tmp_path, capsys, text: str | bytes) -> tuple[int, list[str]]:
    path = tmp_path / "manifest.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    code = main(["validate", "-f", str(path)])
    return code, capsys.readouterr().out.splitlines()


def validate_docs(tmp_path, capsys, *docs) -> tuple[int, list[str]]:
    return validate_text(tmp_path, capsys, yaml.safe_dump_all(docs))


# --- 1. every independent problem, once, at one path -----------------------------------------

def test_two_independent_cross_field_problems_are_both_reported(tmp_path, capsys):
    """The issue's case: epochs 0 with maxSteps 0 (a rule of hyperparameters) and qlora with
    gpus 0 (a rule of the spec). The model's spec-level rule cannot run when hyperparameters
    is invalid; the CRD's CEL rules still can, as the API server runs them."""
    doc = changed(FINETUNE_JOB, "spec.hyperparameters", {"epochs": 0, "maxSteps": 0})
    doc = changed(changed(doc, "spec.method.type", "qlora"), "spec.resources.gpus", 0)
    code, lines = validate_docs(tmp_path, capsys, doc)
    assert code == 1
    assert lines == [
        "feedback-router: spec: method.type qlora needs GPUs: resources.gpus must be > 0",
        "feedback-router: spec.hyperparameters: epochs and maxSteps must not both be 0",
    ]


def test_field_errors_and_cross_field_rules_come_together(tmp_path, capsys):
    doc = changed(FINETUNE_JOB, "spec.hyperparameters.learningRate", -1)
    doc = changed(doc, "spec.dataset.uri", 42)  # a type error elsewhere in the spec
    doc = changed(changed(doc, "spec.method.type", "qlora"), "spec.resources.gpus", 0)
    code, lines = validate_docs(tmp_path, capsys, doc)
    assert code == 1
    assert "feedback-router: spec.hyperparameters.learningRate: must be > 0.0" in lines
    assert any(line.startswith("feedback-router: spec.dataset.uri: ") for line in lines)
    assert ("feedback-router: spec: method.type qlora needs GPUs: resources.gpus must be > 0"
            in lines)
    assert len(lines) == 3


def test_cross_field_problems_have_one_path(tmp_path, capsys):
    """Not `ev-thr: spec: spec.thresholds: ...`."""
    doc = changed(EVAL_JOB, "spec.model", {"uri": "s3://models/x/", "task": "causal-lm"})
    doc = changed(changed(doc, "spec.thresholds", {"f1": 0.9, "accuracy": 0.8}),
                  "spec.compareBaseline", True)
    code, lines = validate_docs(tmp_path, capsys, doc)
    assert code == 1
    assert lines == [
        "feedback-router-eval: spec: compareBaseline needs model.finetuneJobRef (or set "
        "baseline.uri)",
        "feedback-router-eval: spec.thresholds: 'accuracy' is not a metric of task causal-lm; "
        "must be one of loss, perplexity, exactMatch, tokenF1, rougeL, winRate",
        "feedback-router-eval: spec.thresholds: 'f1' is not a metric of task causal-lm; "
        "must be one of loss, perplexity, exactMatch, tokenF1, rougeL, winRate",
    ]


def test_finetune_evaluation_thresholds_are_reported_at_their_path(tmp_path, capsys):
    doc = changed(FINETUNE_JOB, "spec.evaluation.thresholds", {"rougeL": 0.3})
    code, lines = validate_docs(tmp_path, capsys, doc)
    assert (code, len(lines)) == (1, 1)
    assert lines[0].startswith("feedback-router: spec.evaluation.thresholds: 'rougeL' is not")


def test_a_rule_whose_model_could_not_run_is_reported_once(tmp_path, capsys):
    # validation has both uri and splitRatio (its own rule) and splitRatio out of range:
    # the model reports the range, the CRD's rule the pair; nothing twice.
    doc = changed(FINETUNE_JOB, "spec.dataset.validation",
                  {"uri": "s3://datasets/v.jsonl", "splitRatio": 0.9})
    code, lines = validate_docs(tmp_path, capsys, doc)
    assert code == 1
    assert lines == [
        "feedback-router: spec.dataset.validation.splitRatio: must be <= 0.5",
    ] or lines == [
        "feedback-router: spec.dataset.validation: set exactly one of uri and splitRatio",
        "feedback-router: spec.dataset.validation.splitRatio: must be <= 0.5",
    ]
    assert len(set(lines)) == len(lines)


# --- 2. duplicate keys -----------------------------------------------------------------------

MANIFEST = yaml.safe_dump(FINETUNE_JOB, sort_keys=False)


def test_duplicate_key_names_the_key_and_both_lines(tmp_path, capsys):
    text = MANIFEST.replace("  model:\n", "  model:\n    uri: hf://org/other\n  model:\n", 1)
    first = text.splitlines().index("  model:") + 1
    code, lines = validate_text(tmp_path, capsys, text)
    assert code == 1
    assert len(lines) == 1
    assert f"line {first + 2}" in lines[0]
    assert f"duplicate key 'model' at lines {first} and {first + 2}" in lines[0]


def test_duplicate_key_in_flow_style_on_one_line(tmp_path, capsys):
    text = MANIFEST.replace("    batchSize: 16\n", "    batchSize: 16\n    x: {a: 1, a: 2}\n")
    code, lines = validate_text(tmp_path, capsys, text)
    assert code == 1
    assert "duplicate key 'a'" in lines[0]


def test_merge_keys_may_override(tmp_path, capsys):
    """`<<: *base` then a key of the base is YAML's documented override, not a duplicate."""
    text = MANIFEST.replace("  hyperparameters:\n",
                            "  hyperparameters:\n    <<: {epochs: 1, batchSize: 4}\n", 1)
    assert validate_text(tmp_path, capsys, text) == (0, ["1 document valid"])


# --- 3. bounds -------------------------------------------------------------------------------

def test_deep_nesting_is_refused_before_parsing_deeply(tmp_path, capsys):
    for text in ("[" * 5000 + "]" * 5000, "a:\n" + "".join(f"{' ' * i}b:\n" for i in range(1, 1000)),
                 "{a: " * 3000 + "1" + "}" * 3000):
        code, lines = validate_text(tmp_path, capsys, text)
        assert code == 1
        assert len(lines) == 1
        assert lines[0].startswith(f"{tmp_path / 'manifest.yaml'}: (file): nests mappings and "
                                   f"lists deeper than {validation.MAX_DEPTH} levels (line ")


def test_billion_laughs_is_refused_cheaply(tmp_path, capsys):
    lines_ = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines_ += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    code, lines = validate_text(tmp_path, capsys, "\n".join(lines_))
    assert code == 1
    assert f"has more than {validation.MAX_NODES} YAML nodes" in lines[0]


def test_a_recursive_alias_is_refused(tmp_path, capsys):
    code, lines = validate_text(tmp_path, capsys, "spec: &a {model: *a}\n")
    assert code == 1
    assert "alias *a inside the node it refers to" in lines[0]


def test_too_many_documents(tmp_path, capsys):
    code, lines = validate_text(tmp_path, capsys, "---\na: 1\n" * (validation.MAX_DOCUMENTS + 1))
    assert code == 1
    assert lines[0].endswith(f"has more than {validation.MAX_DOCUMENTS} YAML documents")


def test_too_large_file_and_stdin_are_not_read_whole(tmp_path, capsys, monkeypatch):
    code, lines = validate_text(tmp_path, capsys, "# " + "x" * validation.MAX_BYTES)
    assert code == 1 and lines[0].endswith("is larger than 3 MiB, the most the API server "
                                           "accepts in one request")
    stdin = io.TextIOWrapper(io.BytesIO(b"a" * (validation.MAX_BYTES + 1)))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["validate", "-f", "-"]) == 1
    assert "<stdin>: (file): is larger than 3 MiB" in capsys.readouterr().out
    assert stdin.buffer.tell() == validation.MAX_BYTES + 1  # read stopped at the bound


@pytest.mark.parametrize("text", [
    b"\xff\xfe\x00garbage", b"spec:\x00\n", "when: 2026-02-30\n", "n: " + "9" * 5000 + "\n",
    "a: !!python/object:os.system x\n", "? [a, b]\n: c\n", "a: *undefined\n", "\x1b[31m: 1\n",
    "a: !!binary AAA=\n", "- - - -\n", "%YAML 1.1\n%YAML 1.1\n---\na\n",
], ids=["bad-utf8", "nul", "bad-date", "huge-int", "python-tag", "list-key", "undefined-alias",
        "escape", "binary", "nested-lists", "double-directive"])
def test_odd_bytes_are_problems_not_tracebacks(tmp_path, capsys, text):
    code, lines = validate_text(tmp_path, capsys, text)
    assert code == 1 and lines
    assert all(line.isprintable() for line in lines)


# --- 5. properties: any bytes, any tree ------------------------------------------------------

# Compile the CRD's CEL rules now: cel-python raises the recursion limit when it first
# compiles, which hypothesis would warn about inside a test.
validation.validate_document(FINETUNE_JOB)
FAST = settings(max_examples=60, deadline=timedelta(seconds=10),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
    st.text(st.characters(codec="utf-8"), max_size=10),  # control characters, surrogates out
    st.sampled_from(["hf://a/b", "s3://bkt/x", "lora", "qlora", "FinetuneJob", "EvalJob",
                     "kubetune.io/v1alpha1", "nvidia.com/gpu", "64Gi", "-1", "Exists"]),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["apiVersion", "kind", "metadata", "name", "spec", "model", "uri", "resources", "gpus",
     "tolerations", "nodeSelector", "hyperparameters", "epochs", "thresholds", "labels"]))
trees = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(keys, children, max_size=6)),
    max_leaves=40,
)


@st.composite
def deep_trees(draw):
    """A tree wrapped in up to 300 levels of lists and mappings."""
    tree = draw(trees)
    for wrap in draw(st.lists(st.booleans(), max_size=300)):
        tree = [tree] if wrap else {"spec": tree}
    return tree


@st.composite
def documents(draw):
    """A manifest with one field replaced by any tree, or any tree at all."""
    tree = draw(st.one_of(trees, deep_trees()))
    if draw(st.booleans()):
        return tree
    doc = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from([FINETUNE_JOB, EVAL_JOB]))))
    node = doc
    path = draw(st.lists(st.sampled_from(["spec", "model", "resources", "hyperparameters",
                                          "dataset", "metadata", "tolerations", "x"]),
                         min_size=1, max_size=4))
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node[path[-1]] = tree
    return doc


def _assert_clean_run(code: int, lines: list[str]) -> None:
    assert code in (0, 1)
    assert lines and all(line.isprintable() for line in lines)
    if code == 0:
        assert lines[-1].endswith("valid")


@FAST
@given(st.binary(max_size=2000))
def test_any_bytes(tmp_path_factory, capsys, data):
    _assert_clean_run(*validate_text(tmp_path_factory.mktemp("b"), capsys, data))


@FAST
@given(st.lists(documents(), min_size=1, max_size=3))
def test_any_yaml_trees(tmp_path_factory, capsys, docs):
    text = yaml.safe_dump_all(docs, allow_unicode=True)
    _assert_clean_run(*validate_text(tmp_path_factory.mktemp("t"), capsys, text))


@FAST
@given(documents())
def test_the_operator_spec_check_on_any_tree(doc):
    """The operator gets objects from the API server as JSON, not YAML: the same bounds and
    checks apply to the tree itself."""
    body = doc if isinstance(doc, dict) else {"spec": doc}
    problems = spec_problems(body, ("hf", "s3", "pvc", "file"))
    assert all(isinstance(p, str) and p for p in problems)


def test_the_operator_spec_check_bounds_deep_trees():
    deep: object = "leaf"
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = {"spec": deep}
    body = {**FINETUNE_JOB, "metadata": {"name": "x", "annotations": deep}}
    assert spec_problems(body, ("hf",)) == [
        f"(document): nests mappings and lists deeper than {validation.MAX_DEPTH} levels"]
