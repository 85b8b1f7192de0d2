"""The static rules of a ClusterFinetunePolicy: one table, checked here in Python (the operator,
`kubetune policy check`) and turned into the CEL of the chart's ValidatingAdmissionPolicy
(admission.py), so that both layers refuse the same jobs with the same message:

    ClusterFinetunePolicy NAME: FIELD must ... (POLICY SETTING)

A policy applies to a job when its namespaceSelector selects the job's namespace; several may
apply and every one must hold. A setting the policy leaves unset allows anything. On update,
a field left as it was is not judged again (a policy tightened later does not block a user's
suspend of a job it admitted). Jobs are judged with their defaults applied, as the API server
hands them to admission.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..admission.placement import glob_regex
from ..fieldpath import FieldPath
from .selector import selects

KIND = "ClusterFinetunePolicy"
FINETUNE = "FinetuneJob"
EVAL = "EvalJob"
Check = Literal["globs", "images", "max", "queue", "labels"]


@dataclass(frozen=True)
class StaticRule(FieldPath):
    """`field` of a `kind` is judged by the policy's `setting` in the way `check` says."""

    kind: str
    field: str
    """Dotted path from the job's root; `key[].rest` judges `rest` of every item of the list
    at `key` (globs only)."""
    setting: str
    """The ClusterFinetunePolicy spec field."""
    check: Check


def _rules(kind: str, models: tuple[str, ...], data: tuple[str, ...],
           nodes: bool) -> tuple[StaticRule, ...]:
    return (
        *(StaticRule(kind, f, "allowedModels", "globs") for f in models),
        *(StaticRule(kind, f, "allowedDataUris", "globs") for f in data),
        StaticRule(kind, "spec.image", "allowedImages", "images"),
        StaticRule(kind, "spec.resources.gpus", "maxGpusPerPod", "max"),
        *((StaticRule(kind, "spec.resources.nodes", "maxNodes", "max"),) if nodes else ()),
        StaticRule(kind, "spec.queueName", "allowedQueues", "queue"),
        StaticRule(kind, "spec.activeDeadlineSeconds", "maxActiveDeadlineSeconds", "max"),
        StaticRule(kind, "metadata.labels", "requiredLabels", "labels"),
    )


RULES: tuple[StaticRule, ...] = (
    *_rules(FINETUNE, ("spec.model.uri",),
            ("spec.dataset.uri", "spec.dataset.validation.uri", "spec.output.uri",
             "spec.evaluation.dataset.uri"), nodes=True),
    *_rules(EVAL, ("spec.model.uri", "spec.baseline.uri"),
            ("spec.dataset.uri", "spec.baselineTraining.uri", "spec.benchmarkData.uri",
             "spec.benchmarks[].uri", "spec.output.uri"), nodes=False),
)


def rules_for(kind: str) -> tuple[StaticRule, ...]:
    return tuple(rule for rule in RULES if rule.kind == kind)


@dataclass(frozen=True, order=True)
class Violation:
    """One rule of one policy that a job breaks."""

    policy: str
    field: str
    setting: str
    message: str
    """`ClusterFinetunePolicy NAME: what must hold` (the same text the admission policy gives)."""


def value_at(obj: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _glob_match(value: str, globs: Iterable[str]) -> bool:
    return any(re.match(glob_regex(glob), value) for glob in globs)


def _problem(rule: StaticRule, spec: Mapping[str, Any], value: Any) -> str | None:
    """What must hold, or None when the job keeps this rule."""
    setting = spec.get(rule.setting)
    if setting is None:
        return None
    if rule.check == "labels":
        labels = value or {}
        missing = [key for key in setting if not labels.get(key)]
        return (f"{rule.field} must set {', '.join(missing)} ({rule.setting})"
                if missing else None)
    if rule.check == "queue":
        if value is None:
            return (None if spec.get("defaultQueue") else
                    f"{rule.field} must be set to one of {rule.setting} ({', '.join(setting)})")
        return (None if value in setting else
                f"{rule.field} must be one of {rule.setting} ({', '.join(setting)})")
    if value is None:
        return None
    if rule.check == "max":
        return None if value <= setting else f"{rule.field} must be at most {setting} ({rule.setting})"
    if _glob_match(value, setting):
        return None
    if rule.check == "images" and not setting:
        return (f"{rule.field} must be unset: jobs run the image of their runtime "
                f"({rule.setting} is empty)")
    return f"{rule.field} must match one of {rule.setting} ({', '.join(setting)})"


def violations(kind: str, obj: Mapping[str, Any], policy: Mapping[str, Any],
               old: Mapping[str, Any] | None = None) -> list[Violation]:
    """Every static rule of `policy` that `obj` (a defaulted FinetuneJob or EvalJob) breaks;
    the policy is taken to apply (see `applicable`). With `old` (an update), unchanged fields
    pass."""
    name = (policy.get("metadata") or {}).get("name", "")
    spec = policy.get("spec") or {}
    found = []
    for rule in rules_for(kind):
        if rule.list_path is not None:
            problem = _list_problem(rule, spec, obj, old)
        else:
            value = value_at(obj, rule.path)
            if old is not None and value_at(old, rule.path) == value:
                continue
            problem = _problem(rule, spec, value)
        if problem:
            found.append(Violation(name, rule.field, rule.setting, f"{KIND} {name}: {problem}"))
    return found


def _list_values(rule: StaticRule, obj: Mapping[str, Any] | None) -> list[Any]:
    items = value_at(obj, rule.list_path or ())
    return [value_at(item, rule.item_path) for item in items or ()
            if isinstance(item, Mapping)]


def _list_problem(rule: StaticRule, spec: Mapping[str, Any], obj: Mapping[str, Any],
                  old: Mapping[str, Any] | None) -> str | None:
    """The first item's problem; a value some item of `old` had is not judged again."""
    kept = set(_list_values(rule, old)) if old is not None else set()
    return next((problem for value in _list_values(rule, obj) if value not in kept
                 if (problem := _problem(rule, spec, value))), None)


def applicable(policies: Iterable[Mapping[str, Any]],
               namespace_labels: Mapping[str, str] | None) -> list[Mapping[str, Any]]:
    """The policies whose namespaceSelector selects a namespace with these labels, by name."""
    chosen = [p for p in policies
              if selects((p.get("spec") or {}).get("namespaceSelector"), namespace_labels)]
    return sorted(chosen, key=lambda p: (p.get("metadata") or {}).get("name", ""))


def all_violations(kind: str, obj: Mapping[str, Any], policies: Iterable[Mapping[str, Any]],
                   namespace_labels: Mapping[str, str] | None,
                   old: Mapping[str, Any] | None = None) -> list[Violation]:
    """Every rule of every policy that applies to the job's namespace, that the job breaks."""
    return [v for policy in applicable(policies, namespace_labels)
            for v in violations(kind, obj, policy, old)]


def default_queue(policies: Iterable[Mapping[str, Any]]) -> str | None:
    """The queue for a job that names none: the first applicable policy's defaultQueue."""
    return next((q for p in policies if (q := (p.get("spec") or {}).get("defaultQueue"))), None)


def default_deadline(policies: Iterable[Mapping[str, Any]]) -> int | None:
    """The deadline for a job that sets none: the tightest maxActiveDeadlineSeconds."""
    limits = [m for p in policies if (m := (p.get("spec") or {}).get("maxActiveDeadlineSeconds"))]
    return min(limits) if limits else None
