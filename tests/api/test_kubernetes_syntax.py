"""Fields that kubetune copies into Kubernetes objects follow Kubernetes' own rules (issue 11
section 4), so that `kubetune validate` and the CRD refuse what the API server would refuse
when the operator creates the Job:

- label keys (nodeSelector keys, toleration keys, metadata.labels/annotations keys):
  k8s.io/apimachinery/pkg/util/validation.IsQualifiedName;
- label values (nodeSelector values, toleration values, the Kueue queue-name label):
  IsValidLabelValue, at most 63 characters;
- Kueue's queue-name label must also name a LocalQueue, a DNS subdomain (Kueue's webhook,
  pkg/controller/jobframework/validation.go);
- tolerations: pkg/apis/core/validation.ValidateTolerations (Exists takes no value; a
  tolerationSeconds needs effect NoExecute; an empty key needs operator Exists);
- gpuResourceName: pkg/apis/core/helper.IsExtendedResourceName;
- cpu, memory, gpuMemory: the resource.Quantity grammar, not negative (ValidateNonnegativeQuantity);
- priorityClassName and Secret names: IsDNS1123Subdomain; image: distribution/reference.

Each rejection is checked three ways: by `kubetune validate` (the message names the field), by
the committed CRD's OpenAPI schema (jsonschema) and by its CEL rules (cel-python, RE2 regexes
as in the API server).
"""

from __future__ import annotations

from typing import Any

import celpy
import jsonschema
import pytest
import re2
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kubetune.api import kube_syntax as k
from kubetune.api.resources import RESOURCES
from kubetune.cli import main

from .manifests import EVAL_JOB, FINETUNE_JOB, changed

TOL = "spec.resources.tolerations"
REJECTED = [
    # (case, kind, field set, value, path the message names)
    ("queue name over 63", "FinetuneJob", "spec.queueName", "q" * 64, "spec.queueName"),
    ("queue name not a label value", "FinetuneJob", "spec.queueName", "Team_Queue", "spec.queueName"),
    ("nodeSelector key", "FinetuneJob", "spec.resources.nodeSelector", {"gpu type!": "a100"},
     "spec.resources.nodeSelector"),
    ("nodeSelector key empty name", "FinetuneJob", "spec.resources.nodeSelector",
     {"example.com/": "x"}, "spec.resources.nodeSelector"),
    ("nodeSelector key prefix over 253", "FinetuneJob", "spec.resources.nodeSelector",
     {"a" * 254 + "/b": "x"}, "spec.resources.nodeSelector"),
    ("nodeSelector value", "FinetuneJob", "spec.resources.nodeSelector", {"gpu": "A100 80GB"},
     "spec.resources.nodeSelector.gpu"),
    ("nodeSelector value over 63", "FinetuneJob", "spec.resources.nodeSelector", {"gpu": "v" * 64},
     "spec.resources.nodeSelector.gpu"),
    ("Exists with a value", "FinetuneJob", TOL, [{"key": "a", "operator": "Exists", "value": "b"}],
     f"{TOL}[0].value"),
    ("tolerationSeconds without effect", "FinetuneJob", TOL,
     [{"key": "a", "operator": "Exists", "tolerationSeconds": 30}], f"{TOL}[0].effect"),
    ("tolerationSeconds with NoSchedule", "FinetuneJob", TOL,
     [{"key": "a", "value": "b", "effect": "NoSchedule", "tolerationSeconds": 30}],
     f"{TOL}[0].effect"),
    ("empty key with Equal", "FinetuneJob", TOL, [{"operator": "Equal", "value": "x"}],
     f"{TOL}[0].operator"),
    ("toleration key", "FinetuneJob", TOL, [{"key": "bad key", "operator": "Exists"}],
     f"{TOL}[0].key"),
    ("toleration value", "FinetuneJob", TOL, [{"key": "a", "value": "bad value!"}],
     f"{TOL}[0].value"),
    ("gpuResourceName gpu!!", "FinetuneJob", "spec.resources.gpuResourceName", "gpu!!",
     "spec.resources.gpuResourceName"),
    ("gpuResourceName without domain", "FinetuneJob", "spec.resources.gpuResourceName", "gpu",
     "spec.resources.gpuResourceName"),
    ("gpuResourceName kubernetes.io", "FinetuneJob", "spec.resources.gpuResourceName",
     "kubernetes.io/gpu", "spec.resources.gpuResourceName"),
    ("gpuResourceName requests.", "FinetuneJob", "spec.resources.gpuResourceName",
     "requests.nvidia.com/gpu", "spec.resources.gpuResourceName"),
    ("negative cpu", "FinetuneJob", "spec.resources.cpu", "-1", "spec.resources.cpu"),
    ("memory 1.2.3Gi", "FinetuneJob", "spec.resources.memory", "1.2.3Gi", "spec.resources.memory"),
    ("memory suffix and exponent", "FinetuneJob", "spec.resources.memory", "1e3Ki",
     "spec.resources.memory"),
    ("memory lowercase binary suffix", "FinetuneJob", "spec.resources.memory", "64gi",
     "spec.resources.memory"),
    ("negative gpuMemory", "FinetuneJob", "spec.resources.gpuMemory", "-80Gi",
     "spec.resources.gpuMemory"),
    ("priorityClassName", "FinetuneJob", "spec.resources.priorityClassName", "High_Priority",
     "spec.resources.priorityClassName"),
    ("image with a space", "FinetuneJob", "spec.image", "ghcr.io/team/trainer 1.2", "spec.image"),
    ("image uppercase path", "FinetuneJob", "spec.image", "ghcr.io/Team/trainer", "spec.image"),
    ("secret name", "FinetuneJob", "spec.model.secretRef", {"name": "hf_token"},
     "spec.model.secretRef.name"),
    ("secret name dots", "FinetuneJob", "spec.output.secretRef", {"name": "a..b"},
     "spec.output.secretRef.name"),
    ("eval finetuneJobRef name", "EvalJob", "spec.model.finetuneJobRef", {"name": "Router_1"},
     "spec.model.finetuneJobRef.name"),
    ("eval negative cpu", "EvalJob", "spec.resources.cpu", "-500m", "spec.resources.cpu"),
    ("eval image", "EvalJob", "spec.image", "registry.io/Upper", "spec.image"),
    ("eval tolerations", "EvalJob", TOL, [{"operator": "Exists", "value": "x"}], f"{TOL}[0].value"),
    ("eval queue name over 63", "EvalJob", "spec.queueName", "q" * 64, "spec.queueName"),
]

ACCEPTED = [
    ("queue name of 63", "spec.queueName", "q" * 63),
    ("nodeSelector", "spec.resources.nodeSelector",
     {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "kubernetes.io/arch": "amd64", "x": ""}),
    ("tolerations", TOL, [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Exists"},
        {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute",
         "tolerationSeconds": 60},
        {"key": "a", "value": ""},
    ]),
    ("gpuResourceName", "spec.resources.gpuResourceName", "gpu.intel.com/i915"),
    ("cpu", "spec.resources.cpu", "500m"),
    ("cpu plus", "spec.resources.cpu", "+1.5"),
    ("memory", "spec.resources.memory", "64Gi"),
    ("memory exponent", "spec.resources.memory", "1e9"),
    ("gpuMemory", "spec.resources.gpuMemory", ".5Ti"),
    ("priorityClassName", "spec.resources.priorityClassName", "team.high-priority"),
    ("image", "spec.image", "localhost:5000/team/trainer_x:1.2@sha256:" + "a" * 64),
    ("secret", "spec.model.secretRef", {"name": "hf-token.v2"}),
]


def _doc(kind: str, path: str, value: Any) -> dict:
    return changed(FINETUNE_JOB if kind == "FinetuneJob" else EVAL_JOB, path, value)


def _validate(tmp_path, capsys, doc) -> tuple[int, str]:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc))
    return main(["validate", "-f", str(path)]), capsys.readouterr().out


# --- the CRD, checked offline as the API server checks it -----------------------------------

def _committed_schema(repo_root, kind: str) -> dict:
    crd = yaml.safe_load((repo_root / "crds" / f"{RESOURCES[kind].crd_name}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _crd_rejections(repo_root, kind: str, doc: dict) -> list[str]:
    """OpenAPI schema errors and failed CEL rules (items of lists and maps included)."""
    schema = _committed_schema(repo_root, kind)
    errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(doc)]
    env = celpy.Environment()

    def walk(node: Any, sub: dict) -> None:
        for rule in sub.get("x-kubernetes-validations", []):
            if "oldSelf" not in rule["rule"]:
                program = env.program(env.compile(rule["rule"]))
                if not program.evaluate({"self": celpy.json_to_cel(node)}):
                    errors.append(rule["message"])
        if isinstance(node, dict):
            for key, value in node.items():
                if key in sub.get("properties", {}):
                    walk(value, sub["properties"][key])
                elif isinstance(sub.get("additionalProperties"), dict):
                    walk(value, sub["additionalProperties"])
        elif isinstance(node, list) and "items" in sub:
            for item in node:
                walk(item, sub["items"])

    walk(doc["spec"], schema["properties"]["spec"])
    return errors


@pytest.mark.parametrize(("case", "kind", "path", "value", "field"), REJECTED,
                         ids=[c[0] for c in REJECTED])
def test_rejected_by_validate_naming_the_field_and_by_the_crd(
        tmp_path, capsys, repo_root, case, kind, path, value, field):
    doc = _doc(kind, path, value)
    code, out = _validate(tmp_path, capsys, doc)
    assert code == 1
    assert f"{doc['metadata']['name']}: {field}: " in out, out
    assert _crd_rejections(repo_root, kind, doc), "the CRD would accept it"


@pytest.mark.parametrize(("case", "path", "value"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_valid_kubernetes_values_are_accepted_everywhere(tmp_path, capsys, repo_root, case, path,
                                                         value):
    doc = _doc("FinetuneJob", path, value)
    assert _validate(tmp_path, capsys, doc) == (0, "1 document valid\n")
    assert _crd_rejections(repo_root, "FinetuneJob", doc) == []


@pytest.mark.parametrize(("field", "value", "says"), [
    ("labels", {"team a": "x"}, "metadata.labels[team a]: key: name part must consist of"),
    ("labels", {"team": "x" * 64}, "metadata.labels[team]: must be no more than 63 characters"),
    ("annotations", {"example.com/": "x"}, "metadata.annotations[example.com/]: key: name part "
                                           "must be non-empty"),
    ("namespace", "Team_A", "metadata.namespace: must be a DNS label"),
])
def test_object_metadata_is_checked_as_the_api_server_does(tmp_path, capsys, field, value, says):
    code, out = _validate(tmp_path, capsys, _doc("FinetuneJob", f"metadata.{field}", value))
    assert code == 1 and says in out, out


# --- the Python checks and the CRD's expressions agree (RE2 and CEL, as the API server) ------

def _cel(rule: str, value: str) -> bool:
    env = celpy.Environment()
    return bool(env.program(env.compile(rule)).evaluate({"self": celpy.celtypes.StringType(value)}))


def _re2(pattern: str, value: str) -> bool:
    return re2.search(f"^(?:{pattern})$", value) is not None


near_names = st.text(st.sampled_from("aZ09-_./!: "), max_size=80) | st.sampled_from(
    ["a" * 253 + "/b", "a" * 254 + "/b", "a/" + "b" * 63, "a/" + "b" * 64, "nvidia.com/gpu"])


@settings(max_examples=300, deadline=None)
@given(near_names)
def test_qualified_name_check_equals_the_crd_rule(value):
    crd_says = _cel(k.QUALIFIED_NAME_RULE["rule"], value)
    assert crd_says == (not k.qualified_name_problems(value)), value


@settings(max_examples=300, deadline=None)
@given(near_names)
def test_extended_resource_check_equals_the_crd_pattern_and_rule(value):
    rule = k.ExtendedResourceName.__metadata__[0].json_schema_extra["x-kubernetes-validations"][0]
    crd_says = _re2(k.EXTENDED_RESOURCE, value) and _cel(rule["rule"], value)
    assert crd_says == (not k.extended_resource_problems(value)), value


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("aZ09-_.!"), max_size=70))
def test_label_value_check_equals_the_crd_pattern(value):
    crd_says = _re2(k.LABEL_VALUE, value) and len(value) <= k.LABEL_VALUE_MAX
    assert crd_says == (not k.label_value_problems(value)), value


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("0123456789.+-eEKMGTPinumk "), max_size=8))
def test_quantity_check_equals_the_crd_pattern(value):
    assert _re2(k.QUANTITY, value) == (not k.quantity_problems(value)), value
