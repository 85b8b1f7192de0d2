"""Small valid manifests that tests change one field at a time."""

from __future__ import annotations

import copy
from typing import Any

FINETUNE_JOB: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "FinetuneJob",
    "metadata": {"name": "feedback-router", "namespace": "team-a"},
    "spec": {
        "model": {"uri": "hf://sentence-transformers/all-MiniLM-L6-v2",
                  "task": "sequence-classification", "numLabels": 5},
        "dataset": {"uri": "s3://datasets/feedback/train.jsonl", "validation": {"splitRatio": 0.1}},
        "method": {"type": "lora"},
        "hyperparameters": {"epochs": 3, "learningRate": 0.0005, "batchSize": 16},
        "resources": {"gpus": 1},
        "output": {"uri": "s3://models/team-a/feedback-router/"},
        "evaluation": {"dataset": {"uri": "s3://datasets/feedback/test.jsonl"},
                       "thresholds": {"f1": 0.85}},
    },
}

EVAL_JOB: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "EvalJob",
    "metadata": {"name": "feedback-router-eval", "namespace": "team-a"},
    "spec": {
        "model": {"finetuneJobRef": {"name": "feedback-router"}},
        "compareBaseline": True,
        "dataset": {"uri": "s3://datasets/feedback/test.jsonl"},
        "thresholds": {"f1": 0.85},
    },
}


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the dotted `path` set to `value` (or removed if DELETE)."""
    doc = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return doc


DELETE = object()
