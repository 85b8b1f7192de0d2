"""One table of ClusterFinetunePolicy cases, judged by both layers: the operator's Python check
(kubetune.policies.rules) and the chart's ValidatingAdmissionPolicy CEL (evaluated offline with
cel-python by the emulator's evaluator). Each case names the fields the job breaks, in the
rule table's order; both layers must agree, with the same messages."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubetune.api import EvalJobSpec, FinetuneJobSpec

NAMESPACE = "team-a"
TEAM_LABELS = {"kubetune.io/team": "a", "tier": "gpu"}

FINETUNE_JOB: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "FinetuneJob",
    "metadata": {"name": "router", "namespace": NAMESPACE, "labels": {"cost-center": "ml"}},
    "spec": {
        "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "task": "causal-lm"},
        "dataset": {"uri": "s3://team-a/data/train.jsonl",
                    "validation": {"uri": "s3://team-a/data/val.jsonl"}},
        "resources": {"gpus": 2, "nodes": 2},
        "output": {"uri": "s3://team-a/models/router/"},
        "evaluation": {"dataset": {"uri": "s3://team-a/data/test.jsonl"}},
        "queueName": "team-a",
        "activeDeadlineSeconds": 7200,
        "image": "ghcr.io/kubetune/trainer:0.1.0",
    },
}
EVAL_JOB: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "EvalJob",
    "metadata": {"name": "router-eval", "namespace": NAMESPACE, "labels": {"cost-center": "ml"}},
    "spec": {
        "model": {"uri": "s3://team-a/models/router/", "task": "causal-lm"},
        "baseline": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
        "dataset": {"uri": "s3://team-a/data/test.jsonl"},
        "resources": {"gpus": 1},
        "output": {"uri": "s3://team-a/reports/"},
    },
}
BASES = {"FinetuneJob": FINETUNE_JOB, "EvalJob": EVAL_JOB}
SPECS = {"FinetuneJob": FinetuneJobSpec, "EvalJob": EvalJobSpec}


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    """The job as admission sees it: the API server has applied the schema's defaults."""
    obj = copy.deepcopy(obj)
    obj["spec"] = SPECS[obj["kind"]].model_validate(obj["spec"]).to_wire()
    return obj


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kubetune.io/v1alpha1", "kind": "ClusterFinetunePolicy",
            "metadata": {"name": name}, "spec": spec}


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = obj
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    policies: tuple[dict[str, Any], ...]
    broken: tuple[tuple[str, str], ...]
    """(policy name, job field) of each violation, in policy-name then rule-table order."""
    changes: dict[str, Any] = field(default_factory=dict)
    """Dotted path -> value (None: remove) applied to the kind's base job."""
    labels: dict[str, str] = field(default_factory=lambda: dict(TEAM_LABELS))
    """The namespace's labels."""
    old_changes: dict[str, Any] | None = None
    """An update: the stored job is the base job with these changes."""

    def job(self) -> dict[str, Any]:
        return self._job(self.changes)

    def old(self) -> dict[str, Any] | None:
        return None if self.old_changes is None else self._job(self.old_changes)

    def _job(self, changes: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(BASES[self.kind])
        for path, value in changes.items():
            _set(obj, path, value)
        return defaulted(obj)


ONE_GPU = policy("one-gpu", maxGpusPerPod=1)
TEAM_A = {"matchLabels": {"kubetune.io/team": "a"}}

CASES: tuple[Case, ...] = (
    Case("no-policy", "FinetuneJob", (), ()),
    Case("an-empty-policy-allows-all", "FinetuneJob", (policy("empty"),), ()),
    Case("gpus-over-the-max", "FinetuneJob", (ONE_GPU,), (("one-gpu", "spec.resources.gpus"),)),
    Case("gpus-at-the-max", "FinetuneJob", (ONE_GPU,), (), {"spec.resources.gpus": 1}),
    Case("gpus-default-is-one", "FinetuneJob", (policy("zero", maxGpusPerPod=0),),
         (("zero", "spec.resources.gpus"),), {"spec.resources": {}}),
    Case("eval-gpus-over-the-max", "EvalJob", (policy("zero", maxGpusPerPod=0),),
         (("zero", "spec.resources.gpus"),)),
    Case("nodes-over-the-max", "FinetuneJob", (policy("one-node", maxNodes=1),),
         (("one-node", "spec.resources.nodes"),)),
    Case("model-outside-the-globs", "FinetuneJob",
         (policy("models", allowedModels=["hf://meta-llama/*", "s3://models/*"]),),
         (("models", "spec.model.uri"),)),
    Case("model-inside-a-glob", "FinetuneJob",
         (policy("models", allowedModels=["hf://meta-llama/*", "hf://Qwen/Qwen2.5-*"]),), ()),
    Case("a-glob-dot-is-literal", "FinetuneJob",
         (policy("models", allowedModels=["hf://Qwen/Qwen2.5-0.5B-Instruct"]),),
         (("models", "spec.model.uri"),), {"spec.model.uri": "hf://Qwen/Qwen2x5-0x5B-Instruct"}),
    Case("eval-baseline-model", "EvalJob",
         (policy("models", allowedModels=["s3://team-a/*"]),),
         (("models", "spec.baseline.uri"),)),
    Case("data-and-output-outside", "FinetuneJob",
         (policy("data", allowedDataUris=["s3://team-a/data/*"]),),
         (("data", "spec.output.uri"),)),
    Case("every-data-uri-checked", "FinetuneJob",
         (policy("data", allowedDataUris=["s3://team-b/*"]),),
         (("data", "spec.dataset.uri"), ("data", "spec.dataset.validation.uri"),
          ("data", "spec.output.uri"), ("data", "spec.evaluation.dataset.uri"))),
    Case("eval-data", "EvalJob", (policy("data", allowedDataUris=["s3://team-a/data/*"]),),
         (("data", "spec.output.uri"),)),
    Case("eval-benchmark-cache", "EvalJob",
         (policy("data", allowedDataUris=["s3://team-a/*"]),),
         (("data", "spec.benchmarkData.uri"),),
         {"spec.benchmarkData": {"uri": "s3://shared/hf-datasets-cache/"}}),
    Case("eval-every-custom-benchmark-file", "EvalJob",
         (policy("data", allowedDataUris=["s3://team-a/*"]),),
         (("data", "spec.benchmarks[].uri"),),
         {"spec.benchmarks": [
             {"uri": "s3://team-a/bench/ours.jsonl", "format": "multiple-choice"},
             {"task": "arc_easy"},
             {"uri": "s3://team-b/bench/theirs.jsonl", "format": "multiple-choice"}]}),
    Case("eval-a-benchmark-file-kept-on-update", "EvalJob",
         (policy("data", allowedDataUris=["s3://team-a/*"]),), (),
         {"spec.benchmarks": [
             {"task": "arc_easy"},
             {"uri": "s3://team-b/bench/theirs.jsonl", "format": "multiple-choice"}]},
         old_changes={"spec.benchmarks": [
             {"uri": "s3://team-b/bench/theirs.jsonl", "format": "multiple-choice"}]}),
    Case("image-outside", "FinetuneJob",
         (policy("images", allowedImages=["registry.example.com/*"]),),
         (("images", "spec.image"),)),
    Case("image-unset-passes-globs", "FinetuneJob",
         (policy("images", allowedImages=["registry.example.com/*"]),), (),
         {"spec.image": None}),
    Case("runtime-images-only-refuses-any-image", "FinetuneJob",
         (policy("runtime-only", allowedImages=[]),), (("runtime-only", "spec.image"),)),
    Case("runtime-images-only-passes-without-image", "FinetuneJob",
         (policy("runtime-only", allowedImages=[]),), (), {"spec.image": None}),
    Case("queue-not-allowed", "FinetuneJob", (policy("queues", allowedQueues=["gpu-small"]),),
         (("queues", "spec.queueName"),)),
    Case("queue-unset-without-default", "FinetuneJob",
         (policy("queues", allowedQueues=["gpu-small"]),), (("queues", "spec.queueName"),),
         {"spec.queueName": None}),
    Case("queue-unset-with-default", "FinetuneJob",
         (policy("queues", allowedQueues=["gpu-small"], defaultQueue="gpu-small"),), (),
         {"spec.queueName": None}),
    Case("deadline-over-the-max", "FinetuneJob",
         (policy("deadline", maxActiveDeadlineSeconds=3600),),
         (("deadline", "spec.activeDeadlineSeconds"),)),
    Case("deadline-unset-is-filled-not-refused", "EvalJob",
         (policy("deadline", maxActiveDeadlineSeconds=3600),), ()),
    Case("required-labels-missing", "FinetuneJob",
         (policy("labels", requiredLabels=["cost-center", "project", "owner"]),),
         (("labels", "metadata.labels"),), {"metadata.labels": {"project": "x"}}),
    Case("required-labels-empty-value", "EvalJob",
         (policy("labels", requiredLabels=["cost-center"]),),
         (("labels", "metadata.labels"),), {"metadata.labels": {"cost-center": ""}}),
    Case("required-labels-no-labels-at-all", "EvalJob",
         (policy("labels", requiredLabels=["cost-center"]),),
         (("labels", "metadata.labels"),), {"metadata.labels": None}),
    Case("selector-matches", "FinetuneJob", (policy("a", namespaceSelector=TEAM_A, maxGpusPerPod=1),),
         (("a", "spec.resources.gpus"),)),
    Case("selector-does-not-match", "FinetuneJob",
         (policy("b", namespaceSelector={"matchLabels": {"kubetune.io/team": "b"}},
                 maxGpusPerPod=1),), ()),
    Case("selector-namespace-without-labels", "FinetuneJob",
         (policy("a", namespaceSelector=TEAM_A, maxGpusPerPod=1),), (), labels={}),
    Case("selector-expressions", "FinetuneJob",
         (policy("e", maxGpusPerPod=1, namespaceSelector={"matchExpressions": [
             {"key": "tier", "operator": "In", "values": ["gpu", "tpu"]},
             {"key": "kubetune.io/team", "operator": "NotIn", "values": ["b"]},
             {"key": "kubetune.io/team", "operator": "Exists"},
             {"key": "frozen", "operator": "DoesNotExist"}]}),),
         (("e", "spec.resources.gpus"),)),
    Case("selector-expressions-one-fails", "FinetuneJob",
         (policy("e", maxGpusPerPod=1, namespaceSelector={"matchExpressions": [
             {"key": "tier", "operator": "In", "values": ["gpu"]},
             {"key": "tier", "operator": "DoesNotExist"}]}),), ()),
    Case("eval-everything-outside", "EvalJob",
         (policy("strict", allowedModels=["hf://*"], allowedDataUris=["s3://team-b/*"],
                 allowedImages=[], allowedQueues=["gpu"], maxActiveDeadlineSeconds=60),),
         (("strict", "spec.model.uri"), ("strict", "spec.dataset.uri"),
          ("strict", "spec.baselineTraining.uri"), ("strict", "spec.output.uri"),
          ("strict", "spec.image"), ("strict", "spec.queueName"),
          ("strict", "spec.activeDeadlineSeconds")),
         {"spec.baselineTraining": {"uri": "s3://team-a/data/train.jsonl"},
          "spec.image": "ghcr.io/kubetune/trainer:0.1.0", "spec.activeDeadlineSeconds": 120}),
    Case("several-policies-all-hold", "FinetuneJob",
         (ONE_GPU, policy("models", allowedModels=["s3://*"])),
         (("models", "spec.model.uri"), ("one-gpu", "spec.resources.gpus"))),
    Case("update-of-an-unchanged-field-passes", "FinetuneJob", (ONE_GPU,), (),
         {"spec.suspend": True}, old_changes={}),
    Case("update-of-a-changed-field-is-judged", "FinetuneJob",
         (policy("queues", allowedQueues=["team-a"]),), (("queues", "spec.queueName"),),
         {"spec.queueName": "other"}, old_changes={}),
)
