"""Built-in kinds are decoded against the official OpenAPI schema and validated as kube-apiserver
validates them: ObjectMeta rules (k8s.io/apimachinery/pkg/api/validation/objectmeta.go,
https://kubernetes.io/docs/concepts/overview/working-with-objects/names/ and
.../labels/#syntax-and-character-set) and the kind's own rules (pkg/apis/core/validation,
pkg/apis/batch/validation).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from emulator_helpers import JOB_SPEC, POD_SPEC, RawApi

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS = "/api/v1/namespaces/default/pods"


def causes(response: Any) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in response.json()["details"]["causes"]]


def job(name: str = "train", **template_spec: Any) -> dict[str, Any]:
    spec = copy.deepcopy(JOB_SPEC)
    spec["template"]["spec"].update(template_spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def test_a_label_value_over_63_characters_is_a_422(http: RawApi) -> None:
    body = job()
    body["metadata"]["labels"] = {"run": "r" * 71}
    response = http.post(JOBS, body)
    assert response.status_code == 422
    assert response.json()["message"] == (
        f'Job.batch "train" is invalid: metadata.labels: Invalid value: "{"r" * 71}":'
        " must be no more than 63 characters")
    assert causes(response) == [("FieldValueInvalid", "metadata.labels",
                                 f'Invalid value: "{"r" * 71}": must be no more than 63 characters')]


def test_label_keys_and_values_follow_the_qualified_name_syntax(http: RawApi) -> None:
    response = http.post(CONFIGMAPS, {"metadata": {"name": "c", "labels": {"bad key": "-x"}}})
    assert response.status_code == 422
    messages = [message for _, field, message in causes(response) if field == "metadata.labels"]
    assert any("name part must consist of alphanumeric characters" in m for m in messages)
    assert any(m.startswith('Invalid value: "-x": a valid label must be an empty string') for m in messages)


@pytest.mark.parametrize(("toleration", "expected"), [
    ({"key": "gpu", "operator": "Bogus"},
     ("FieldValueNotSupported", "spec.template.spec.tolerations[0].operator",
      'Unsupported value: "Bogus": supported values: "Equal", "Exists"')),
    ({"key": "gpu", "operator": "Exists", "value": "yes"},
     ("FieldValueInvalid", "spec.template.spec.tolerations[0].operator",
      'Invalid value: {"key":"gpu","operator":"Exists","value":"yes"}: value must be empty when'
      " `operator` is 'Exists'")),
    ({"key": "gpu", "effect": "Sometimes"},
     ("FieldValueNotSupported", "spec.template.spec.tolerations[0].effect",
      'Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"')),
    ({"operator": "Equal", "value": "x"},
     ("FieldValueInvalid", "spec.template.spec.tolerations[0].operator",
      'Invalid value: "Equal": operator must be Exists when `key` is empty, which means'
      ' "match all values and all keys"')),
])
def test_invalid_tolerations_are_a_422(http: RawApi, toleration: dict, expected: tuple) -> None:
    """ValidateTolerations in pkg/apis/core/validation/validation.go."""
    response = http.post(JOBS, job(tolerations=[toleration]))
    assert response.status_code == 422
    assert expected in causes(response)


def test_pod_and_job_specs_need_containers_images_and_a_job_restart_policy(http: RawApi) -> None:
    response = http.post(PODS, {"metadata": {"name": "p"}, "spec": {}})
    assert response.status_code == 422
    assert ("FieldValueRequired", "spec.containers", "Required value") in causes(response)
    response = http.post(JOBS, job(containers=[{"name": "Main"}], restartPolicy="Always"))
    assert response.status_code == 422
    found = causes(response)
    assert ("FieldValueRequired", "spec.template.spec.containers[0].image", "Required value") in found
    assert ("FieldValueNotSupported", "spec.template.spec.restartPolicy",
            'Unsupported value: "Always": supported values: "OnFailure", "Never"') in found
    assert any(field == "spec.template.spec.containers[0].name" and "RFC 1123 label" in message
               for _, field, message in found)


def test_a_job_name_over_63_characters_cannot_label_its_pods(http: RawApi) -> None:
    """The Job strategy labels pods with batch.kubernetes.io/job-name=<name>, a label value."""
    name = "j" * 64
    response = http.post(JOBS, job(name))
    assert response.status_code == 422
    assert causes(response) == [("FieldValueInvalid", "spec.template.labels",
                                 f'Invalid value: "{name}": must be no more than 63 characters')]
    assert http.post(JOBS, job("j" * 63)).status_code == 201


@pytest.mark.parametrize(("collection", "name", "message"), [
    (CONFIGMAPS, "Bad_Name", "a lowercase RFC 1123 subdomain must consist of"),
    ("/api/v1/namespaces/default/services", "1st", "a DNS-1035 label must consist of"),
    ("/api/v1/namespaces", "team.a", "must not contain dots"),
])
def test_names_follow_each_kinds_rule(http: RawApi, collection: str, name: str, message: str) -> None:
    response = http.post(collection, {"metadata": {"name": name}})
    assert response.status_code == 422
    [(reason, field, text)] = causes(response)
    assert (reason, field) == ("FieldValueInvalid", "metadata.name")
    assert text.startswith(f'Invalid value: "{name}": {message}')


def test_annotations_over_256_kib_are_too_long(http: RawApi) -> None:
    response = http.post(CONFIGMAPS, {"metadata": {"name": "c", "annotations": {"a": "x" * 262144}}})
    assert response.status_code == 422
    assert causes(response) == [("FieldValueTooLong", "metadata.annotations",
                                 "Too long: may not be more than 262144 bytes")]


def test_a_value_of_the_wrong_type_cannot_be_decoded(http: RawApi) -> None:
    """A typed decoder cannot put a string into an int32: 400 "cannot be handled as"."""
    body = job()
    body["spec"]["backoffLimit"] = "three"
    response = http.post(JOBS, body)
    assert response.status_code == 400
    assert response.json()["message"].startswith('Job in version "v1" cannot be handled as a Job:')


def test_unknown_fields_of_builtins_are_dropped_or_rejected(http: RawApi) -> None:
    body = {"metadata": {"name": "c"}, "data": {"a": "1"}, "dataa": {"b": "2"}}
    strict = http.session.post(http.base_url + CONFIGMAPS, json=body, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert strict.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error:'
        ' unknown field "dataa"')
    warned = http.post(CONFIGMAPS, body)
    assert warned.status_code == 201
    assert warned.headers["Warning"] == '299 - "unknown field \\"dataa\\""'
    assert "dataa" not in http.get(f"{CONFIGMAPS}/c").json()


def test_a_valid_pod_is_created(http: RawApi) -> None:
    assert http.post(PODS, {"metadata": {"name": "p"}, "spec": POD_SPEC}).status_code == 201


def test_server_version_is_a_current_release(http: RawApi) -> None:
    """kubectl warns when it is more than one minor version away from the server."""
    version = http.get("/version").json()
    assert version["major"] == "1" and int(version["minor"]) >= 29
    assert version["gitVersion"].startswith(f"v1.{version['minor']}.")


@pytest.mark.parametrize(("container", "pod_spec", "expected"), [
    ({"env": [{"name": "1ST", "value": "x"}]}, {},
     ("FieldValueInvalid", "spec.template.spec.containers[0].env[0].name",
      'Invalid value: "1ST": a valid environment variable name must consist of alphabetic characters,'
      " digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',"
      "  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")),
    ({"volumeMounts": [{"name": "data", "mountPath": "/data"}]}, {},
     ("FieldValueNotFound", "spec.template.spec.containers[0].volumeMounts[0].name", 'Not found: "data"')),
    ({}, {"volumes": [{"name": "Data", "emptyDir": {}}]},
     ("FieldValueInvalid", "spec.template.spec.volumes[0].name",
      'Invalid value: "Data": a lowercase RFC 1123 label must consist of lower case alphanumeric'
      " characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or"
      " '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")),
    ({"ports": [{"name": "progress-endpoint", "containerPort": 70000}]}, {},
     ("FieldValueInvalid", "spec.template.spec.containers[0].ports[0].containerPort",
      "Invalid value: 70000: must be between 1 and 65535, inclusive")),
    ({"ports": [{"name": "progress-endpoint", "containerPort": 8000}]}, {},
     ("FieldValueInvalid", "spec.template.spec.containers[0].ports[0].name",
      'Invalid value: "progress-endpoint": must be no more than 15 characters')),
    ({"resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "2Gi"}}}, {},
     ("FieldValueInvalid", "spec.template.spec.containers[0].resources.requests",
      'Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi')),
])
def test_container_env_volumes_ports_and_resources(
        http: RawApi, container: dict, pod_spec: dict, expected: tuple) -> None:
    """pkg/apis/core/validation: ValidateEnv, ValidateVolumes/validateVolumeMounts,
    validateContainerPorts (IsValidPortName, IsValidPortNum), ValidateResourceRequirements."""
    body = job(**pod_spec)
    body["spec"]["template"]["spec"]["containers"][0].update(container)
    response = http.post(JOBS, body)
    assert response.status_code == 422, response.text
    assert expected in causes(response)


def test_a_malformed_quantity_cannot_be_decoded(http: RawApi) -> None:
    """resource.Quantity fails to unmarshal "1 GB": the decoder answers 400."""
    body = job()
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1 GB"}}
    response = http.post(JOBS, body)
    assert response.status_code == 400
    assert response.json()["message"] == (
        'Job in version "v1" cannot be handled as a Job: quantities must match the regular expression'
        " '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
