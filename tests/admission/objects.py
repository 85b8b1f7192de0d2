"""Jobs that name one object through one field of the rule table, and a table authorizer."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubetune.admission.rules import RULES, AccessRule
from kubetune.emulator.cel_kubernetes import AccessCheck

NAMESPACE = "team-a"
NAMING_RULES = tuple(r for r in RULES if r.reference != "flag")
"""Fields that name an object (the requester needs a verb on that object)."""
FLAG_RULES = tuple(r for r in RULES if r.reference == "flag")
"""Flags that make the operator create an object (the requester needs create on its kind)."""

# Every parent of every rule's field is present and names nothing of its own (s3:// URIs).
FINETUNE_JOB: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "FinetuneJob",
    "metadata": {"name": "router", "namespace": NAMESPACE},
    "spec": {
        "model": {"uri": "s3://models/base/", "task": "sequence-classification"},
        "dataset": {"uri": "s3://data/train.jsonl", "validation": {"uri": "s3://data/val.jsonl"}},
        "resources": {"gpus": 0},
        "output": {"uri": "s3://models/out/"},
        "evaluation": {"dataset": {"uri": "s3://data/test.jsonl"}},
        "tracking": {"mlflow": {"uri": "http://mlflow.mlops:5000"}},
    },
}
EVAL_JOB: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "EvalJob",
    "metadata": {"name": "router-eval", "namespace": NAMESPACE},
    "spec": {
        "model": {"uri": "s3://models/out/", "task": "sequence-classification"},
        "baseline": {"uri": "s3://models/base/"},
        "baselineTraining": {"uri": "s3://data/train.jsonl"},
        "dataset": {"uri": "s3://data/test.jsonl"},
        "resources": {"gpus": 0},
        "output": {"uri": "s3://reports/router/"},
        "tracking": {"mlflow": {"uri": "http://mlflow.mlops:5000"}},
    },
}
# Benchmarks score a causal-lm; the last benchmark is the custom one whose fields name things.
BENCHMARK_EVAL_JOB: dict[str, Any] = copy.deepcopy(EVAL_JOB)
BENCHMARK_EVAL_JOB["spec"].update({
    "model": {"uri": "s3://models/out/", "task": "causal-lm"},
    "benchmarks": [{"task": "arc_easy"},
                   {"uri": "s3://bench/mc.jsonl", "format": "multiple-choice"}],
    "benchmarkData": {"uri": "s3://bench/hf-datasets-cache/"},
})
del BENCHMARK_EVAL_JOB["spec"]["baselineTraining"]
BASES = {"FinetuneJob": FINETUNE_JOB, "EvalJob": EVAL_JOB}


def base_for(rule: AccessRule) -> dict[str, Any]:
    if rule.field.startswith("spec.benchmark"):
        return BENCHMARK_EVAL_JOB
    return BASES[rule.kind]


def naming(rule: AccessRule, name: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of the kind's base job whose `rule.field` names the object `name`."""
    obj = copy.deepcopy(base or base_for(rule))
    if rule.reference == "flag":  # output.serving.create: a job that may ask for it
        kind = rule.when[1]
        obj["spec"]["output"]["serving"] = {"kind": kind, "create": True}
        if kind == "InferenceService":
            obj["spec"]["output"]["mergeAdapter"] = True
        else:
            obj["spec"]["model"]["task"] = "causal-lm"
        return obj
    *parents, last = rule.item_path
    node = obj
    if rule.list_path is not None:
        for key in rule.list_path:
            node = node[key]
        node = node[-1]
    for key in parents:
        node = node[key]
    if rule.reference == "pvcUri":
        node[last] = f"pvc://{name}/data"
    elif rule.reference == "objectRef":
        node.pop("uri", None)  # a model is a URI or a FinetuneJob, not both
        node[last] = {"name": name}
    else:
        node[last] = {"name": name}
    return obj


@dataclass
class Grants:
    """An authorizer that answers from a table: (user, verb, group, resource, namespace, name)."""

    table: set[tuple[str, str, str, str, str, str]] = field(default_factory=set)
    asked: list[AccessCheck] = field(default_factory=list)

    def grant(self, user: str, rule: AccessRule, name: str, namespace: str = NAMESPACE) -> None:
        self.table.add((user, rule.verb, rule.group, rule.resource, namespace, name))

    def decide(self, user: Any, check: AccessCheck) -> bool:
        self.asked.append(check)
        return (user.name, check.verb, check.group, check.resource, check.namespace or "",
                check.name or "") in self.table


@dataclass(frozen=True)
class Requester:
    name: str
    groups: tuple[str, ...] = ("system:authenticated",)
