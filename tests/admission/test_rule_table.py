"""The rule table covers every field that names an object, and `requirements` lists what one
request needs: the operator's webhook asks exactly these of the API server."""

from __future__ import annotations

import copy

import pytest
from kubetune.admission.rules import RULES, AccessRule, requirements
from kubetune.api import FinetuneJobSpec
from kubetune.api.resources import JOBS
from kubetune.crdgen import resource_schema

from .objects import FLAG_RULES, NAMESPACE, NAMING_RULES, naming

NOT_DATA_REFERENCES = {"spec.runtimeRef", "spec.tracking.mlflow.uri"}
"""runtimeRef: a runtime template, not an object whose data the pods reach on the requester's
behalf: runtimes are written by the platform team (teams get read on them), and the Secrets and
PVCs a runtime mounts were named by whoever may write that runtime. tracking.mlflow.uri: an
http(s) URL outside the cluster; its schema pattern admits no pvc://."""


def _referencing_fields(schema: dict, path: str) -> set[str]:
    """Dotted paths of every `...Ref` object and every URI string under `schema`, lists
    included (as `key[]`)."""
    found = set()
    for key, child in (schema.get("properties") or {}).items():
        child_path = f"{path}.{key}"
        if child_path in NOT_DATA_REFERENCES:
            continue
        if key.endswith("Ref") or key == "uri" or key.endswith("Uri"):
            found.add(child_path)
        if child.get("type") == "array":
            child, child_path = child.get("items") or {}, f"{child_path}[]"
        found |= _referencing_fields(child, child_path)
    return found


@pytest.mark.parametrize("resource", JOBS.values(), ids=lambda r: r.kind)
def test_every_field_that_names_an_object_has_a_rule(resource):
    """A new secretRef, URI or reference in the API without a rule would be a side door."""
    spec = resource_schema(resource)["properties"]["spec"]
    fields = _referencing_fields(spec, "spec")
    assert fields == {rule.field for rule in RULES
                      if rule.kind == resource.kind and rule.reference != "flag"}


def test_creating_either_serving_kind_needs_create_on_it():
    """output.serving.create makes the operator create a KServe object for the requester."""
    flags = {(r.when, r.verb, r.group, r.resource) for r in RULES if r.reference == "flag"}
    kinds = FinetuneJobSpec.model_json_schema(by_alias=True)["$defs"]["ServingSpec"][
        "properties"]["kind"]["anyOf"][0]["enum"]
    assert {when[1] for when, *_ in flags} == set(kinds)
    assert flags == {(("spec.output.serving.kind", k), "create", "serving.kserve.io",
                      f"{k.lower()}s") for k in kinds}


def test_rules_name_the_permission_in_their_message():
    for rule in RULES:
        assert rule.message.startswith(f"{rule.field}: ")
        assert f"RBAC: {rule.verb} {rule.resource}" in rule.message


@pytest.mark.parametrize("rule", NAMING_RULES, ids=lambda r: f"{r.kind}:{r.field}")
def test_a_create_requires_get_on_what_the_field_names(rule: AccessRule):
    (needed,) = requirements(rule.kind, naming(rule, "the-object"))
    assert (needed.rule, needed.namespace, needed.name) == (rule, NAMESPACE, "the-object")


@pytest.mark.parametrize("rule", NAMING_RULES, ids=lambda r: f"{r.kind}:{r.field}")
def test_an_update_requires_only_what_changed(rule: AccessRule):
    old = naming(rule, "the-object")
    same = copy.deepcopy(old)
    same["spec"].setdefault("suspend", True)
    assert requirements(rule.kind, same, old) == []
    (needed,) = requirements(rule.kind, naming(rule, "other"), old)
    assert needed.name == "other"


def test_a_pvc_uri_requires_its_claim_and_other_schemes_nothing():
    rule = next(r for r in RULES if r.kind == "FinetuneJob" and r.field == "spec.output.uri")
    job = naming(rule, "out")
    job["spec"]["output"]["uri"] = "pvc://results/team-a/run-1/"
    assert [r.name for r in requirements("FinetuneJob", job)] == ["results"]
    job["spec"]["output"]["uri"] = "s3://results/team-a/"
    assert requirements("FinetuneJob", job) == []


def test_a_list_field_requires_each_new_name_once():
    rule = next(r for r in RULES if r.field == "spec.benchmarks[].secretRef")
    job = naming(rule, "a")
    first = job["spec"]["benchmarks"][-1]
    job["spec"]["benchmarks"] += [{**first, "name": "b", "secretRef": {"name": "b"}},
                                  {**first, "name": "c", "secretRef": {"name": "a"}}]
    assert [r.name for r in requirements("EvalJob", job)] == ["a", "b"]
    grown = copy.deepcopy(job)
    grown["spec"]["benchmarks"].append({**first, "name": "d", "secretRef": {"name": "d"}})
    assert [r.name for r in requirements("EvalJob", grown, job)] == ["d"]


@pytest.mark.parametrize("rule", FLAG_RULES, ids=lambda r: r.resource)
def test_serving_create_requires_create_once_and_again_only_for_another_kind(rule):
    job = naming(rule, "unused")
    (needed,) = requirements("FinetuneJob", job)
    assert (needed.rule, needed.name) == (rule, "")
    kept = copy.deepcopy(job)
    kept["spec"]["suspend"] = True
    assert requirements("FinetuneJob", kept, job) == []
    off = copy.deepcopy(job)
    off["spec"]["output"]["serving"]["create"] = False
    assert requirements("FinetuneJob", off) == []
    assert [r.rule for r in requirements("FinetuneJob", job, off)] == [rule]
    (other,) = [r for r in FLAG_RULES if r != rule]
    switched = naming(other, "unused")
    assert [r.rule for r in requirements("FinetuneJob", switched, job)] == [other]
