"""Manifests the end-to-end tests apply (what a user would write)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def causal_lm_job(name: str, model: Path, data: Path, *, max_steps: int = 40,
                  **spec: Any) -> dict[str, Any]:
    body = {
        "model": {"uri": f"file://{model}"},
        "dataset": {"uri": f"file://{data}", "format": "chat", "validation": {"splitRatio": 0.1}},
        "method": {"type": "lora", "lora": {"r": 8, "alpha": 16, "targetModules": ["all-linear"]}},
        "hyperparameters": {"epochs": 0, "maxSteps": max_steps, "learningRate": 0.005,
                            "batchSize": 4, "maxSeqLength": 128, "evalEverySteps": 10,
                            "lrScheduler": "constant", "warmupRatio": 0.0},
        "resources": {"gpus": 0},
        "output": {"uri": f"pvc://models/{name}", "mergeAdapter": True},
        "checkpointing": {"everySteps": 10, "keep": 2},
    }
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return {"apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob",
            "metadata": {"name": name, "namespace": "team-a"}, "spec": body}
