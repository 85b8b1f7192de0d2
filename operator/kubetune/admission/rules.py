"""The rule table: for each field that makes a job's pods reach an object, the permission its
requester must hold on that object.

Kubernetes lets a user mount a Secret or a PersistentVolumeClaim into a pod only if they may
create that pod, and RBAC on pods is usually not granted to the teams that get FinetuneJobs.
So a job may name an object only when the user who creates or changes it may `get` that object
themselves; the operator then does nothing for them that they could not do. The same table
generates the chart's ValidatingAdmissionPolicy (policy.py) and drives the operator's webhook,
so the three layers agree field by field and message by message.

An unchanged field needs nothing on update: the user who set it was checked when they did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..fieldpath import FieldPath

Reference = Literal["secretRef", "pvcUri", "objectRef", "flag"]
PVC_PREFIX = "pvc://"


@dataclass(frozen=True)
class AccessRule(FieldPath):
    """`field` of a `kind` names an object; its requester needs `verb` on it."""

    kind: str
    field: str
    """Dotted path from the object's root, e.g. spec.model.secretRef; `[]` after a key marks a
    list whose every item is checked, e.g. spec.benchmarks[].uri."""
    reference: Reference
    """secretRef / objectRef: an object with `name`; pvcUri: a URI whose pvc:// claim counts;
    flag: a boolean that, true, makes the operator create a `resource` for the requester."""
    group: str
    resource: str
    verb: str = "get"
    when: tuple[str, str] | None = None
    """flag only: (dotted path, value) that must hold too, e.g. the kind to be created."""

    @property
    def message(self) -> str:
        """Why a request is refused: the field, and the permission its requester lacks."""
        what = {
            "secrets": "the Secret it names",
            "persistentvolumeclaims": "the PersistentVolumeClaim its pvc:// URI names",
            "finetunejobs": "the FinetuneJob it names",
            "inferenceservices": "InferenceServices",
            "llminferenceservices": "LLMInferenceServices",
        }[self.resource]
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return (f"{self.field}: the requester needs permission to {self.verb} {what} "
                f"(RBAC: {self.verb} {qualified} in the job's namespace)")


def _secret(kind: str, field: str) -> AccessRule:
    return AccessRule(kind, field, "secretRef", "", "secrets")


def _pvc(kind: str, field: str) -> AccessRule:
    return AccessRule(kind, field, "pvcUri", "", "persistentvolumeclaims")


def _serving(kind: str, resource: str) -> AccessRule:
    """output.serving.create makes the operator create a KServe object of output.serving.kind."""
    return AccessRule(FINETUNE, "spec.output.serving.create", "flag", "serving.kserve.io",
                      resource, "create", when=("spec.output.serving.kind", kind))


FINETUNE = "FinetuneJob"
EVAL = "EvalJob"

RULES: tuple[AccessRule, ...] = (
    _secret(FINETUNE, "spec.model.secretRef"),
    _pvc(FINETUNE, "spec.model.uri"),
    _secret(FINETUNE, "spec.dataset.secretRef"),
    _pvc(FINETUNE, "spec.dataset.uri"),
    _pvc(FINETUNE, "spec.dataset.validation.uri"),
    _secret(FINETUNE, "spec.output.secretRef"),
    _pvc(FINETUNE, "spec.output.uri"),
    # The operator creates this EvalJob itself, later: its references are checked now, against
    # the user who wrote them.
    _secret(FINETUNE, "spec.evaluation.dataset.secretRef"),
    _pvc(FINETUNE, "spec.evaluation.dataset.uri"),
    _secret(EVAL, "spec.model.secretRef"),
    _pvc(EVAL, "spec.model.uri"),
    # An EvalJob reads the referenced FinetuneJob's outputs (and its secretRefs' credentials).
    AccessRule(EVAL, "spec.model.finetuneJobRef", "objectRef", "kubetune.io", "finetunejobs"),
    _secret(EVAL, "spec.baseline.secretRef"),
    _pvc(EVAL, "spec.baseline.uri"),
    _secret(EVAL, "spec.dataset.secretRef"),
    _pvc(EVAL, "spec.dataset.uri"),
    _secret(EVAL, "spec.baselineTraining.secretRef"),
    _pvc(EVAL, "spec.baselineTraining.uri"),
    _secret(EVAL, "spec.output.secretRef"),
    _pvc(EVAL, "spec.output.uri"),
    _secret(EVAL, "spec.benchmarkData.secretRef"),
    _pvc(EVAL, "spec.benchmarkData.uri"),
    _secret(EVAL, "spec.benchmarks[].secretRef"),
    _pvc(EVAL, "spec.benchmarks[].uri"),
    # The pod reads these credentials into its environment (spec.tracking.mlflow.uri is an
    # http(s) URL outside the cluster, not an object: the schema admits no pvc:// there).
    _secret(FINETUNE, "spec.tracking.mlflow.secretRef"),
    _secret(EVAL, "spec.tracking.mlflow.secretRef"),
    # The operator creates the KServe object once the evaluation passed: only for a requester
    # who may create one (the schema makes create name its kind).
    _serving("InferenceService", "inferenceservices"),
    _serving("LLMInferenceService", "llminferenceservices"),
)


@dataclass(frozen=True)
class Requirement:
    """One permission one request needs: `rule.verb` on `rule.resource` NAME in NAMESPACE."""

    rule: AccessRule
    namespace: str
    name: str

    @property
    def message(self) -> str:
        return self.rule.message


def rules_for(kind: str) -> tuple[AccessRule, ...]:
    return tuple(rule for rule in RULES if rule.kind == kind)


def _at(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


FLAG_NAME = ""
"""A flag needs the verb on the resource as a whole (a create names no object yet)."""


def _name_in(rule: AccessRule, value: Any) -> str | None:
    if rule.reference == "flag":
        return FLAG_NAME if value is True else None
    if rule.reference == "pvcUri":
        if not isinstance(value, str) or not value.startswith(PVC_PREFIX):
            return None
        return value[len(PVC_PREFIX):].split("/", 1)[0] or None
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) and name else None


def referenced_names(rule: AccessRule, obj: dict[str, Any] | None) -> list[str]:
    """The names of the objects `rule.field` of `obj` names (one per list item), in order."""
    if rule.when is not None and _at(obj, tuple(rule.when[0].split("."))) != rule.when[1]:
        return []
    if rule.list_path is None:
        items = [obj]
    else:
        found = _at(obj, rule.list_path)
        items = found if isinstance(found, list) else []
    names = (_name_in(rule, _at(item, rule.item_path)) for item in items)
    return list(dict.fromkeys(name for name in names if name is not None))


def requirements(kind: str, obj: dict[str, Any],
                 old: dict[str, Any] | None = None) -> list[Requirement]:
    """What the requester of a create (`old` None) or an update of `obj` must be allowed."""
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    needed = []
    for rule in rules_for(kind):
        # Names already there before an update were checked when they were set; in a list,
        # an item moved or kept needs nothing either.
        before = set(referenced_names(rule, old)) if old is not None else set()
        needed += [Requirement(rule, namespace, name)
                   for name in referenced_names(rule, obj) if name not in before]
    return needed
