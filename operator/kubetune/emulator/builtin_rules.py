"""Hand-written validation of built-in kinds that the OpenAPI schema cannot express.

A subset of k8s.io/kubernetes/pkg/apis/core/validation (ValidatePodSpec, ValidateTolerations,
container names and images, restart and pull policies) and pkg/apis/batch/validation (a Job's
template, its restart policy, the `batch.kubernetes.io/job-name` label that makes Job names
longer than 63 characters invalid), with the source's field paths and messages. Names of
each kind follow pkg/apis/*/validation's NameIsDNS... choice.
"""

from __future__ import annotations

from typing import Any

from kubetune.emulator import field_errors, object_meta
from kubetune.emulator.field_errors import FieldError
from kubetune.emulator.object_meta import NameRule

# Kinds whose names are DNS-1123 labels or DNS-1035 labels; the rest are DNS-1123 subdomains.
_NAME_RULES: dict[tuple[str, str], NameRule] = {
    ("", "Namespace"): object_meta.dns1123_label,
    ("", "Service"): object_meta.dns1035_label,
}
_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_JOB_RESTART_POLICIES = ["OnFailure", "Never"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def name_rule(group: str, kind: str) -> NameRule:
    return _NAME_RULES.get((group, kind), object_meta.dns1123_subdomain)


def validate(group: str, kind: str, obj: dict[str, Any]) -> list[FieldError]:
    """The kind-specific rules for `obj` (already decoded against its schema)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    if (group, kind) == ("", "Pod"):
        return validate_pod_spec(spec, "spec", _RESTART_POLICIES)
    if (group, kind) == ("batch", "Job"):
        return _validate_job(obj, spec)
    return []


def _validate_job(obj: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    found: list[FieldError] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    # The Job strategy labels the pod template with batch.kubernetes.io/job-name=<name>.
    found.extend(field_errors.invalid("spec.template.labels", name, message)
                 for message in object_meta.label_value(name) if len(name) > 63)
    template = spec.get("template")
    if not isinstance(template, dict):
        return [*found, field_errors.required("spec.template", "")]
    template_meta = template.get("metadata") or {}
    found.extend(object_meta.validate_labels(template_meta.get("labels"), "spec.template.metadata.labels"))
    found.extend(object_meta.validate_annotations(
        template_meta.get("annotations"), "spec.template.metadata.annotations"))
    pod_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    found.extend(validate_pod_spec(pod_spec, "spec.template.spec", _JOB_RESTART_POLICIES))
    return found


def validate_pod_spec(spec: dict[str, Any], path: str, restart_policies: list[str]) -> list[FieldError]:
    found: list[FieldError] = []
    containers = spec.get("containers")
    if not containers:
        found.append(field_errors.required(f"{path}.containers", ""))
    for field in ("initContainers", "containers"):
        found.extend(_validate_containers(spec.get(field) or [], f"{path}.{field}"))
    restart = spec.get("restartPolicy")
    if restart is None and restart_policies is _JOB_RESTART_POLICIES:
        found.append(field_errors.required(
            f"{path}.restartPolicy", 'valid values: "OnFailure", "Never"'))
    elif restart is not None and restart not in restart_policies:
        found.append(field_errors.not_supported(f"{path}.restartPolicy", restart, restart_policies))
    found.extend(object_meta.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    found.extend(validate_tolerations(spec.get("tolerations") or [], f"{path}.tolerations"))
    return found


def _validate_containers(containers: list[Any], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    names: set[str] = set()
    for index, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        where = f"{path}[{index}]"
        name = container.get("name") or ""
        if not name:
            found.append(field_errors.required(f"{where}.name", ""))
        else:
            found.extend(field_errors.invalid(f"{where}.name", name, message)
                         for message in object_meta.dns1123_label(name))
            if name in names:
                found.append(field_errors.duplicate(f"{where}.name", name))
            names.add(name)
        if not (container.get("image") or "").strip():
            found.append(field_errors.required(f"{where}.image", ""))
        policy = container.get("imagePullPolicy")
        if policy is not None and policy not in _PULL_POLICIES:
            found.append(field_errors.not_supported(f"{where}.imagePullPolicy", policy, _PULL_POLICIES))
    return found


def validate_tolerations(tolerations: list[Any], path: str) -> list[FieldError]:
    """ValidateTolerations (pkg/apis/core/validation/validation.go)."""
    found: list[FieldError] = []
    for index, toleration in enumerate(tolerations):
        if not isinstance(toleration, dict):
            continue
        where = f"{path}[{index}]"
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or ""
        value = toleration.get("value") or ""
        effect = toleration.get("effect") or ""
        if key:
            found.extend(field_errors.invalid(f"{where}.key", key, message)
                         for message in object_meta.qualified_name(key))
        if not key and operator != "Exists":
            found.append(field_errors.invalid(
                f"{where}.operator", operator,
                'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            found.append(field_errors.invalid(
                f"{where}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            problems = object_meta.label_value(value)
            if problems:
                found.append(field_errors.invalid(f"{where}.operator", value, ";".join(problems)))
        elif operator == "Exists":
            if value:
                found.append(field_errors.invalid(
                    f"{where}.operator", toleration, "value must be empty when `operator` is 'Exists'"))
        else:
            found.append(field_errors.not_supported(f"{where}.operator", operator, ["Equal", "Exists"]))
        if effect and effect not in _TAINT_EFFECTS:
            found.append(field_errors.not_supported(f"{where}.effect", effect, _TAINT_EFFECTS))
    return found
