"""The generated CRDs: committed, valid apiextensions/v1, structural, bounded, and their CEL
rules and printer columns behave as the API server would run them."""

from __future__ import annotations

from typing import Any

import celpy
import kubernetes_validate
import pytest
import yaml
from jsonpath_ng.ext import parse as jsonpath
from kubetune.api import EvalJobSpec, FinetuneJobSpec
from kubetune.api.resources import RESOURCES
from kubetune.crdgen import crd, crd_yaml

from .manifests import DELETE, EVAL_JOB, FINETUNE_JOB, changed

KINDS = list(RESOURCES)


@pytest.mark.parametrize("kind", KINDS)
def test_committed_crd_matches_the_models(repo_root, kind):
    resource = RESOURCES[kind]
    committed = (repo_root / "crds" / f"{resource.crd_name}.yaml").read_text()
    assert committed == crd_yaml(resource), "crds/ is stale: run `make crds`"


@pytest.mark.parametrize("version", ["1.29", kubernetes_validate.latest_version()])
@pytest.mark.parametrize("kind", KINDS)
def test_crd_is_valid_apiextensions_v1(kind, version):
    kubernetes_validate.validate(crd(RESOURCES[kind]), version, strict=True)


def _schema(kind: str) -> dict[str, Any]:
    return crd(RESOURCES[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _nodes(schema: dict[str, Any], path: str = ""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind):
    for path, node in _nodes(_schema(kind)):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not {"$ref", "anyOf", "allOf", "oneOf"} & node.keys(), path


@pytest.mark.parametrize("kind", KINDS)
def test_every_spec_string_list_and_number_is_bounded(kind):
    spec = _schema(kind)["properties"]["spec"]
    for path, node in _nodes(spec, ".spec"):
        kind_of = node.get("type")
        if kind_of == "string":
            assert "maxLength" in node or "enum" in node, f"{path} has no maxLength"
        elif kind_of == "array":
            assert "maxItems" in node, f"{path} has no maxItems"
        elif kind_of in ("integer", "number"):
            assert "minimum" in node and "maximum" in node, f"{path} is unbounded"
        elif kind_of == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, f"{path} has no maxProperties"


def test_names_short_names_category_and_status_subresource():
    for kind, short in (("FinetuneJob", "ftj"), ("EvalJob", "evj")):
        spec = crd(RESOURCES[kind])["spec"]
        assert spec["names"]["shortNames"] == [short]
        assert spec["names"]["categories"] == ["kubetune"]
        assert spec["versions"][0]["subresources"] == {"status": {}}
        assert spec["scope"] == "Namespaced"


def test_finetune_job_printer_columns_read_the_status():
    obj = changed(FINETUNE_JOB, "status", {
        "phase": "Running", "progress": {"percent": 40, "trainLoss": 0.41, "evalLoss": 0.38}})
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    columns = crd(RESOURCES["FinetuneJob"])["spec"]["versions"][0]["additionalPrinterColumns"]
    shown = {c["name"]: (c.get("priority", 0), _column_value(obj, c["jsonPath"])) for c in columns}
    assert shown == {
        "PHASE": (0, "Running"), "PROGRESS": (0, 40), "LOSS": (0, 0.41), "EVAL-LOSS": (0, 0.38),
        "AGE": (0, "2026-01-01T00:00:00Z"),
        "MODEL": (1, "hf://sentence-transformers/all-MiniLM-L6-v2"), "METHOD": (1, "lora"),
        "GPUS": (1, 1),
    }


def test_eval_job_passed_column_reads_the_condition():
    obj = changed(EVAL_JOB, "status", {"phase": "Succeeded", "samples": 200, "conditions": [
        {"type": "Succeeded", "status": "True"}, {"type": "Passed", "status": "False"}]})
    columns = crd(RESOURCES["EvalJob"])["spec"]["versions"][0]["additionalPrinterColumns"]
    passed = next(c for c in columns if c["name"] == "PASSED")
    assert _column_value(obj, passed["jsonPath"]) == "False"


def _column_value(obj: dict, path: str) -> Any:
    # kubectl's JSONPath filter syntax `[?(@.type=="Passed")]` is understood by jsonpath-ng.
    matches = jsonpath("$" + path).find(obj)
    return matches[0].value if matches else None


# --- CEL rules, evaluated offline by cel-python exactly as written in the CRD -----------------

def _rules(schema: dict[str, Any], path: tuple = ()):
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for name, sub in schema.get("properties", {}).items():
        yield from _rules(sub, (*path, name))


def _cel_failures(kind: str, obj: dict, old: dict | None = None) -> list[str]:
    """Messages of the CRD's CEL rules that `obj` (with defaults applied) breaks."""
    env = celpy.Environment()
    failures = []
    for path, rule in _rules(_schema(kind)):
        node, old_node = obj, old
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
            old_node = old_node.get(part) if isinstance(old_node, dict) else None
        if node is None or ("oldSelf" in rule["rule"] and old_node is None):
            continue
        activation = {"self": celpy.json_to_cel(node)}
        if old_node is not None:
            activation["oldSelf"] = celpy.json_to_cel(old_node)
        if not env.program(env.compile(rule["rule"])).evaluate(activation):
            failures.append(rule["message"])
    return failures


def _defaulted(doc: dict) -> dict:
    model = FinetuneJobSpec if doc["kind"] == "FinetuneJob" else EvalJobSpec
    return {**doc, "spec": model.model_validate(doc["spec"]).to_wire()}


def test_valid_manifests_pass_every_cel_rule():
    assert _cel_failures("FinetuneJob", _defaulted(FINETUNE_JOB)) == []
    assert _cel_failures("EvalJob", _defaulted(EVAL_JOB)) == []


CEL_CASES = [
    ("FinetuneJob", "spec.hyperparameters", {"epochs": 0, "maxSteps": 0},
     "epochs and maxSteps must not both be 0"),
    ("FinetuneJob", "spec.dataset.validation", {"uri": "s3://bkt/v.jsonl", "splitRatio": 0.1},
     "set exactly one of uri and splitRatio"),
    ("FinetuneJob", "spec.dataset.validation", {}, "set exactly one of uri and splitRatio"),
    ("FinetuneJob", "spec.hyperparameters.packing", True,
     "hyperparameters.packing must not be true for task sequence-classification"),
    ("FinetuneJob", "spec.resources.gpus", 0, None),  # lora on CPU is fine
    ("FinetuneJob", "metadata.name", "x" * 54, "metadata.name must be at most 53"),
    ("EvalJob", "spec.model", {"uri": "s3://bkt/m/", "finetuneJobRef": {"name": "a"}},
     "set exactly one of uri and finetuneJobRef"),
    ("EvalJob", "spec.model", {}, "set exactly one of uri and finetuneJobRef"),
    ("EvalJob", "spec.model.task", "causal-lm", "thresholds of task causal-lm must be among"),
    ("EvalJob", "spec.baseline", {"uri": "hf://org/base"}, "set at most one of baseline"),
]


@pytest.mark.parametrize(("kind", "path", "value", "message"), CEL_CASES)
def test_cel_rules_reject_what_the_models_reject(kind, path, value, message):
    base = FINETUNE_JOB if kind == "FinetuneJob" else EVAL_JOB
    doc = changed(base, path, value)
    # The API server applies defaults before CEL runs; raw values are what the user wrote.
    failures = _cel_failures(kind, doc)
    if message is None:
        assert failures == []
    else:
        assert any(message in f for f in failures), failures
        model = FinetuneJobSpec if kind == "FinetuneJob" else EvalJobSpec
        if path.startswith("spec"):
            with pytest.raises(ValueError):
                model.model_validate(doc["spec"])


@pytest.mark.parametrize(("changes", "message"), [
    ({"spec.model": {"uri": "hf://org/lm", "task": "causal-lm"}},
     "method.headInit linear-probe needs model.task sequence-classification"),
    ({"spec.resources": {"gpus": 2, "strategy": "fsdp"}},
     "method.headInit linear-probe is not supported with resources.strategy fsdp"),
    ({}, None),
])
def test_a_linear_probe_head_needs_classification_and_no_fsdp_in_cel_and_the_models(changes,
                                                                                     message):
    doc = changed(FINETUNE_JOB, "spec.method.headInit", "linear-probe")
    for path, value in changes.items():
        doc = changed(doc, path, value)
    failures = _cel_failures("FinetuneJob", doc)
    if message is None:
        assert failures == []
        FinetuneJobSpec.model_validate(doc["spec"])
        return
    assert any(message in f for f in failures), failures
    with pytest.raises(ValueError, match=message):
        FinetuneJobSpec.model_validate(doc["spec"])


def test_qlora_without_gpus_breaks_the_cel_rule():
    doc = changed(changed(FINETUNE_JOB, "spec.method.type", "qlora"), "spec.resources.gpus", 0)
    assert "method.type qlora needs GPUs: resources.gpus must be > 0" in _cel_failures(
        "FinetuneJob", doc)


@pytest.mark.parametrize(("changes", "message"), [
    ({"spec.resources.strategy": "fsdp", "spec.resources.gpus": 0},
     "resources.strategy fsdp needs GPUs: resources.gpus must be > 0"),
    ({"spec.resources.strategy": "fsdp", "spec.method.type": "qlora"},
     "resources.strategy fsdp is for method full or lora, not qlora"),
    ({"spec.resources.strategy": "fsdp", "spec.resources.gpus": 2}, None),
    ({"spec.resources.strategy": "auto", "spec.resources.gpus": 0}, None),
    ({"spec.resources.cpuOffload": True, "spec.resources.gpus": 2},
     "resources.cpuOffload needs resources.strategy fsdp"),
    ({"spec.resources.cpuOffload": True, "spec.resources.strategy": "ddp"},
     "resources.cpuOffload needs resources.strategy fsdp"),
    ({"spec.resources.cpuOffload": True, "spec.resources.strategy": "fsdp",
      "spec.resources.gpus": 2}, None),
])  # fmt: skip
def test_fsdp_rules_in_cel_and_in_the_models(changes, message):
    doc = FINETUNE_JOB
    for path, value in changes.items():
        doc = changed(doc, path, value)
    failures = _cel_failures("FinetuneJob", doc)
    if message is None:
        assert failures == []
        assert _cel_failures("FinetuneJob", _defaulted(doc)) == []
        FinetuneJobSpec.model_validate(doc["spec"])
    else:
        assert message in failures
        with pytest.raises(ValueError, match=message):
            FinetuneJobSpec.model_validate(doc["spec"])


@pytest.mark.parametrize("section", ["model", "dataset", "method", "hyperparameters",
                                     "resources", "output"])
def test_training_sections_are_immutable(section):
    old = _defaulted(FINETUNE_JOB)
    new = changed(old, f"spec.{section}.extraMarker", 1)
    assert "is immutable once the job is created" in _cel_failures("FinetuneJob", new, old)


@pytest.mark.parametrize(("path", "value"), [("spec.suspend", True),
                                              ("spec.queueName", "other-queue")])
def test_suspend_and_queue_name_may_change(path, value):
    old = _defaulted(FINETUNE_JOB)
    assert _cel_failures("FinetuneJob", changed(old, path, value), old) == []


def test_deleting_an_optional_field_is_not_a_cel_failure():
    assert _cel_failures("FinetuneJob", changed(FINETUNE_JOB, "spec.evaluation", DELETE)) == []


def test_defaults_are_written_in_the_schema():
    props = _schema("FinetuneJob")["properties"]["spec"]["properties"]
    hyper = props["hyperparameters"]["properties"]
    # Resolved per method by the operator (lora 2e-4, full 2e-5), like packing per task.
    assert "default" not in hyper["learningRate"]
    assert hyper["batchSize"]["default"] == 8
    assert props["method"]["default"] == {}
    assert props["method"]["properties"]["lora"]["properties"]["targetModules"]["default"] == [
        "all-linear"]
    assert "default" not in hyper["packing"]  # resolved per task by the operator


def test_generated_yaml_round_trips(repo_root):
    for resource in RESOURCES.values():
        assert yaml.safe_load(crd_yaml(resource)) == crd(resource)
