"""Custom resources are decoded and validated against their CRD as kube-apiserver does.

Each test makes the request a user or the operator would make and asserts kube-apiserver's
answer: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
(#validation, #defaulting, #field-pruning, #validation-rules) and
https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation.
"""

from __future__ import annotations

import copy
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from emulator_helpers import RawApi
from kubetune.emulator import EmulatorThread

CRDS = pathlib.Path(__file__).resolve().parents[2] / "crds"
FTJS = "/apis/kubetune.io/v1alpha1/namespaces/default/finetunejobs"
FTJ: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob", "metadata": {"name": "router"},
    "spec": {"model": {"uri": "hf://org/model"}, "dataset": {"uri": "pvc://data/train.jsonl"},
             "output": {"uri": "pvc://models/router"}, "resources": {"gpus": 0}},
}


@pytest.fixture
def api() -> Iterator[RawApi]:
    with EmulatorThread(crds=CRDS) as cluster, requests.Session() as session:
        yield RawApi(cluster.url, session)


def ftj(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(FTJ)
    body["spec"].update(spec)
    return body


def causes(response: requests.Response) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in response.json()["details"]["causes"]]


def test_a_value_out_of_bounds_is_a_422_with_the_field_path(api: RawApi) -> None:
    """kube-openapi's `minimum`/`exclusiveMinimum` message, turned into a field.Invalid by
    apiextensions-apiserver (kubeOpenAPIErrorToFieldError), joined by errors.NewInvalid."""
    response = api.post(FTJS, ftj(hyperparameters={"learningRate": -1}))
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "Invalid"
    assert body["details"]["group"] == "kubetune.io" and body["details"]["kind"] == "FinetuneJob"
    assert body["message"] == (
        'FinetuneJob.kubetune.io "router" is invalid: spec.hyperparameters.learningRate: Invalid value:'
        " -1: spec.hyperparameters.learningRate in body should be greater than 0")
    assert causes(response) == [(
        "FieldValueInvalid", "spec.hyperparameters.learningRate",
        "Invalid value: -1: spec.hyperparameters.learningRate in body should be greater than 0")]
    assert api.get(f"{FTJS}/router").status_code == 404


def test_enum_required_pattern_and_several_errors_in_one_status(api: RawApi) -> None:
    body = ftj(method={"type": "adapters"}, model={"uri": "ftp://x"})
    del body["spec"]["output"]
    response = api.post(FTJS, body)
    assert response.status_code == 422
    assert sorted(causes(response)) == sorted([
        ("FieldValueNotSupported", "spec.method.type",
         'Unsupported value: "adapters": supported values: "lora", "qlora", "full", "dpo"'),
        ("FieldValueRequired", "spec.output", "Required value"),
        ("FieldValueInvalid", "spec.model.uri",
         "Invalid value: \"ftp://x\": spec.model.uri in body should match '^(hf|s3|pvc|file)://.+$'"),
        # An unsupported value blocks the CEL rules (validator.go, hasBlockingErr).
        ("FieldValueInvalid", "<nil>",
         "Invalid value: null: some validation rules were not checked because the object was invalid;"
         " correct the existing errors to complete validation"),
    ])
    assert response.json()["message"].startswith('FinetuneJob.kubetune.io "router" is invalid: [')


def test_a_wrong_type_blocks_the_cel_rules(api: RawApi) -> None:
    """A type error stops CEL evaluation, with a note (apiextensions-apiserver
    pkg/registry/customresource/validator.go, hasBlockingErr)."""
    response = api.post(FTJS, ftj(resources={"gpus": "two"}))
    assert response.status_code == 422
    assert causes(response) == [
        ("FieldValueTypeInvalid", "spec.resources.gpus",
         'Invalid value: "string": spec.resources.gpus in body must be of type integer: "string"'),
        ("FieldValueInvalid", "<nil>",
         "Invalid value: null: some validation rules were not checked because the object was invalid;"
         " correct the existing errors to complete validation"),
    ]


def test_schema_defaults_are_filled_in_recursively(api: RawApi) -> None:
    """`default` applies to missing fields, and `default: {}` objects get their children's
    defaults (structural defaulting), so the stored and returned object carries them."""
    created = api.post(FTJS, ftj())
    assert created.status_code == 201, created.text
    spec = api.get(f"{FTJS}/router").json()["spec"]
    assert spec["method"]["type"] == "lora"
    assert spec["method"]["lora"]["r"] == 16
    assert spec["dataset"]["cleaning"] == {"dropEmpty": True, "dropDuplicates": True,
                                           "overLength": "truncate"}
    # `hyperparameters: {}` is defaulted, then its children (the learning rate has no schema
    # default: the operator resolves it per method).
    assert spec["hyperparameters"]["epochs"] == 3
    assert spec["hyperparameters"]["lrScheduler"] == "cosine"
    assert "learningRate" not in spec["hyperparameters"]
    assert created.json()["spec"] == spec


def test_unknown_fields_under_strict_warn_and_ignore(api: RawApi) -> None:
    """Strict -> 400 "strict decoding error"; Warn (also the default) -> the field is dropped
    and a 299 Warning header names it; Ignore -> dropped silently."""
    body = ftj(learningRate=0.1)  # at the wrong level: spec.learningRate
    strict = api.session.post(api.base_url + FTJS, json=body, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert strict.json()["reason"] == "BadRequest"
    assert strict.json()["message"] == (
        'FinetuneJob in version "v1alpha1" cannot be handled as a FinetuneJob: strict decoding error:'
        ' unknown field "spec.learningRate"')

    warned = api.session.post(api.base_url + FTJS, json=body)
    assert warned.status_code == 201
    assert warned.headers["Warning"] == '299 - "unknown field \\"spec.learningRate\\""'
    assert "learningRate" not in api.get(f"{FTJS}/router").json()["spec"]

    body["metadata"]["name"] = "quiet"
    ignored = api.session.post(api.base_url + FTJS, json=body, params={"fieldValidation": "Ignore"})
    assert ignored.status_code == 201 and "Warning" not in ignored.headers
    assert "learningRate" not in ignored.json()["spec"]


def test_duplicate_fields_are_strict_decoding_errors(api: RawApi) -> None:
    raw = json.dumps(ftj()).replace('"resources": {"gpus": 0}', '"resources": {"gpus": 0, "gpus": 1}')
    response = api.session.post(api.base_url + FTJS, data=raw, params={"fieldValidation": "Strict"},
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"].endswith('strict decoding error: duplicate field "spec.resources.gpus"')


def test_unknown_field_in_a_strict_merge_patch_is_a_422_on_patch(api: RawApi) -> None:
    """handlers/patch.go reports strict decoding errors of a patched object as
    errors.NewInvalid(GroupKind{}, "", [field.Invalid("patch", <patched JSON>, ...)])."""
    api.post(FTJS, ftj())
    response = api.session.patch(
        api.base_url + f"{FTJS}/router", params={"fieldValidation": "Strict"},
        data=json.dumps({"spec": {"bogus": 1}}), headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 422
    [cause] = response.json()["details"]["causes"]
    assert cause["field"] == "patch" and cause["reason"] == "FieldValueInvalid"
    assert cause["message"].endswith('strict decoding error: unknown field "spec.bogus"')
    assert response.json()["message"].startswith(' "" is invalid: patch: Invalid value: "{')


def test_cel_rule_on_the_spec_rejects_qlora_without_gpus(api: RawApi) -> None:
    """A failing x-kubernetes-validations rule is field.Invalid(path, <schema type>, message)."""
    response = api.post(FTJS, ftj(method={"type": "qlora"}))
    assert response.status_code == 422
    assert causes(response) == [("FieldValueInvalid", "spec",
                                 'Invalid value: "object": method.type qlora needs GPUs:'
                                 " resources.gpus must be > 0")]


def test_cel_rule_at_the_root_has_the_nil_path(api: RawApi) -> None:
    """A rule on the root schema reports at field.Path(nil), which prints as <nil>."""
    body = ftj()
    body["metadata"]["name"] = "n" * 54
    response = api.post(FTJS, body)
    assert response.status_code == 422
    [(reason, path, message)] = causes(response)
    assert (reason, path) == ("FieldValueInvalid", "<nil>")
    assert message.startswith('Invalid value: "object": metadata.name must be at most 53 characters')


@pytest.mark.parametrize(("content_type", "patch"), [
    ("application/merge-patch+json", {"spec": {"hyperparameters": {"learningRate": 0.001}}}),
    ("application/json-patch+json",
     [{"op": "add", "path": "/spec/hyperparameters/learningRate", "value": 0.001}]),
    ("application/apply-patch+yaml", {"apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob",
                                      "spec": {"hyperparameters": {"learningRate": 0.001}}}),
])
def test_transition_rule_makes_hyperparameters_immutable(
        api: RawApi, content_type: str, patch: Any) -> None:
    """`self == oldSelf` runs on update only, with oldSelf the stored value (transition
    rules); the create that set the value was allowed."""
    assert api.post(FTJS, ftj(hyperparameters={"learningRate": 0.01})).status_code == 201
    response = api.patch(f"{FTJS}/router", patch, content_type)
    assert response.status_code == 422, response.text
    assert causes(response) == [("FieldValueInvalid", "spec.hyperparameters",
                                 'Invalid value: "object": is immutable once the job is created')]
    assert api.get(f"{FTJS}/router").json()["spec"]["hyperparameters"]["learningRate"] == 0.01
    # Fields without the rule still change.
    assert api.patch(f"{FTJS}/router", {"spec": {"suspend": True}}).status_code == 200


def test_transition_rule_on_put(api: RawApi) -> None:
    stored = api.post(FTJS, ftj()).json()
    stored["spec"]["model"]["uri"] = "hf://org/other"
    response = api.put(f"{FTJS}/router", stored)
    assert response.status_code == 422
    assert causes(response)[0][:2] == ("FieldValueInvalid", "spec.model")


def test_status_writes_are_validated_against_the_status_schema(api: RawApi) -> None:
    """The status subresource validates the whole object, and never changes spec."""
    stored = api.post(FTJS, ftj()).json()
    bad = api.patch(f"{FTJS}/router/status", {"status": {"phase": "Exploded"}})
    assert bad.status_code == 422
    assert causes(bad)[0][:2] == ("FieldValueNotSupported", "status.phase")
    stored["status"] = {"phase": "Running"}
    stored["spec"]["suspend"] = True
    written = api.put(f"{FTJS}/router/status", stored).json()
    assert written["status"]["phase"] == "Running" and written["spec"]["suspend"] is False


def test_strategic_merge_patch_on_a_custom_resource_is_415(api: RawApi) -> None:
    """Custom resources have no patch strategies: handlers/patch.go answers 415 and lists the
    patch types it takes (negotiation.NewUnsupportedMediaTypeError)."""
    api.post(FTJS, ftj())
    response = api.patch(f"{FTJS}/router", {"spec": {"suspend": True}},
                         "application/strategic-merge-patch+json")
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert response.json()["message"] == (
        "the body of the request was in an unknown format - accepted media types include:"
        " application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json")


GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "gadgets", "kind": "Gadget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object",
                 "properties": {"spec": {
                     "type": "object",
                     "x-kubernetes-validations": [
                         {"rule": "self.min <= self.max", "fieldPath": ".min",
                          "messageExpression": "'min ' + string(self.min) + ' exceeds max'"},
                         {"rule": "!has(self.owner)", "reason": "FieldValueForbidden",
                          "message": "owner is set by the controller"}],
                     "properties": {
                         "min": {"type": "integer"}, "max": {"type": "integer"},
                         "owner": {"type": "string"},
                         "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                   "x-kubernetes-list-map-keys": ["name"],
                                   "items": {"type": "object", "required": ["name"],
                                             "properties": {"name": {"type": "string"},
                                                            "port": {"type": "integer"}}}},
                         "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                     }}}}}}]},
}
GADGETS = "/apis/example.com/v1/namespaces/default/gadgets"


def test_field_path_message_expression_reason_list_map_keys_and_preserved_fields(api: RawApi) -> None:
    assert api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", GADGET_CRD).status_code == 201
    spec = {"min": 5, "max": 1, "owner": "me",
            "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}
    response = api.post(GADGETS, {"metadata": {"name": "g"}, "spec": spec})
    assert response.status_code == 422
    assert sorted(causes(response)) == sorted([
        ("FieldValueDuplicate", "spec.ports[1]", 'Duplicate value: {"name":"http"}'),
        ("FieldValueInvalid", "spec.min", 'Invalid value: "object": min 5 exceeds max'),
        ("FieldValueForbidden", "spec", "Forbidden: owner is set by the controller"),
    ])
    kept = api.post(GADGETS, {"metadata": {"name": "g"},
                              "spec": {"min": 1, "max": 2, "extra": {"anything": {"goes": 1}}}})
    assert kept.status_code == 201
    assert kept.json()["spec"]["extra"] == {"anything": {"goes": 1}}


def test_a_default_added_by_a_newer_crd_does_not_trip_a_transition_rule(api: RawApi) -> None:
    """kube-apiserver defaults objects read from etcd as well, so after a CRD upgrade adds a
    defaulted field, oldSelf has it too and `self == oldSelf` holds for an unchanged spec."""
    api.post(FTJS, ftj())
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/finetunejobs.kubetune.io"
    crd = api.get(crd_path).json()
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["hyperparameters"]["properties"]["newKnob"] = {"type": "integer", "default": 7}
    assert api.put(crd_path, crd).status_code == 200
    labelled = api.patch(f"{FTJS}/router", {"metadata": {"labels": {"team": "a"}}})
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["spec"]["hyperparameters"]["newKnob"] == 7


def test_validation_ratcheting_lets_unchanged_invalid_values_through(api: RawApi) -> None:
    """CRDValidationRatcheting (on by default since 1.30, KEP-4008): after a CRD tightens its
    schema or adds a rule, an update that leaves a now-invalid value unchanged is accepted;
    changing that value must satisfy the new schema and rules
    (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-ratcheting)."""
    api.post(FTJS, ftj(hyperparameters={"batchSize": 8}))
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/finetunejobs.kubetune.io"
    crd = api.get(crd_path).json()
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["output"]["properties"]["uri"]["maxLength"] = 5
    spec_schema["properties"]["resources"].setdefault("x-kubernetes-validations", []).append(
        {"rule": "self.gpus >= 2", "message": "needs two GPUs"})
    assert api.put(crd_path, crd).status_code == 200

    assert api.patch(f"{FTJS}/router", {"spec": {"suspend": True}}).status_code == 200
    changed = api.patch(f"{FTJS}/router", {"spec": {"output": {"uri": "pvc://models/other"},
                                                    "resources": {"gpus": 1}}})
    assert changed.status_code == 422
    immutable = 'Invalid value: "object": is immutable once the job is created'
    assert sorted(causes(changed)) == [
        ("FieldValueInvalid", "spec.output", immutable),
        ("FieldValueInvalid", "spec.resources", immutable),
        ("FieldValueInvalid", "spec.resources", 'Invalid value: "object": needs two GPUs'),
        ("FieldValueTooLong", "spec.output.uri", "Too long: may not be more than 5 bytes"),
    ]
