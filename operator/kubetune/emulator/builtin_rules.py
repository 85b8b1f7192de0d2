"""Hand-written validation of built-in kinds that the OpenAPI schema cannot express.

A subset of k8s.io/kubernetes/pkg/apis/core/validation (ValidatePodSpec, ValidateTolerations,
container names and images, restart and pull policies, env names, volumes and their mounts,
ports, resource quantities and requests <= limits) and pkg/apis/batch/validation (a Job's
template, its restart policy, the `batch.kubernetes.io/job-name` label that makes Job names
longer than 63 characters invalid), with the source's field paths and messages. Names of
each kind follow pkg/apis/*/validation's NameIsDNS... choice.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from kubetune.emulator import errors, field_errors, object_meta
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
_ENV_NAME = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_NAME_RE = re.compile(f"^{_ENV_NAME}$")
_QUANTITY = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(_QUANTITY)
_PORT_NAME_CHARS = re.compile("^[-a-z0-9]+$")


def name_rule(group: str, kind: str) -> NameRule:
    return _NAME_RULES.get((group, kind), object_meta.dns1123_subdomain)


def check_quantities(kind: str, version: str, obj: dict[str, Any]) -> None:
    """A resource quantity that does not parse cannot be decoded at all (400, not 422):
    resource.Quantity's UnmarshalJSON fails with ErrFormatWrong."""
    for container in _all_containers(obj):
        resources = container.get("resources") or {}
        for section in ("limits", "requests"):
            for value in (resources.get(section) or {}).values():
                if isinstance(value, str) and not _QUANTITY_RE.match(value):
                    raise errors.bad_request(
                        f'{kind} in version "{version}" cannot be handled as a {kind}: quantities'
                        f" must match the regular expression '{_QUANTITY}'")


def _all_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pod_specs = [spec, template.get("spec") if isinstance(template.get("spec"), dict) else {}]
    return [container for pod_spec in pod_specs for field in ("initContainers", "containers")
            for container in (pod_spec.get(field) or []) if isinstance(container, dict)]


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
    volumes = _validate_volumes(spec.get("volumes") or [], f"{path}.volumes", found)
    for field in ("initContainers", "containers"):
        found.extend(_validate_containers(spec.get(field) or [], f"{path}.{field}", volumes))
    restart = spec.get("restartPolicy")
    if restart is None and restart_policies is _JOB_RESTART_POLICIES:
        found.append(field_errors.required(
            f"{path}.restartPolicy", 'valid values: "OnFailure", "Never"'))
    elif restart is not None and restart not in restart_policies:
        found.append(field_errors.not_supported(f"{path}.restartPolicy", restart, restart_policies))
    found.extend(object_meta.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    found.extend(validate_tolerations(spec.get("tolerations") or [], f"{path}.tolerations"))
    return found


def _validate_volumes(volumes: list[Any], path: str, found: list[FieldError]) -> set[str]:
    """ValidateVolumes: names are DNS-1123 labels and unique; returns the names."""
    names: set[str] = set()
    for index, volume in enumerate(volumes):
        name = volume.get("name") if isinstance(volume, dict) else None
        where = f"{path}[{index}].name"
        if not name:
            found.append(field_errors.required(where, ""))
            continue
        found.extend(field_errors.invalid(where, name, message)
                     for message in object_meta.dns1123_label(name))
        if name in names:
            found.append(field_errors.duplicate(where, name))
        names.add(name)
    return names


def _validate_containers(containers: list[Any], path: str, volumes: set[str]) -> list[FieldError]:
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
        found.extend(_validate_env(container.get("env") or [], f"{where}.env"))
        found.extend(_validate_mounts(container.get("volumeMounts") or [], f"{where}.volumeMounts", volumes))
        found.extend(_validate_ports(container.get("ports") or [], f"{where}.ports"))
        found.extend(_validate_resources(container.get("resources") or {}, f"{where}.resources"))
    return found


def _validate_env(env: list[Any], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    for index, variable in enumerate(env):
        name = variable.get("name") if isinstance(variable, dict) else None
        where = f"{path}[{index}].name"
        if not name:
            found.append(field_errors.required(where, ""))
        elif not _ENV_NAME_RE.match(name):
            found.append(field_errors.invalid(where, name, object_meta.regex_error(
                "a valid environment variable name must consist of alphabetic characters, digits,"
                " '_', '-', or '.', and must not start with a digit", _ENV_NAME,
                "my.env-name", "MY_ENV.NAME", "MyEnvName1")))
    return found


def _validate_mounts(mounts: list[Any], path: str, volumes: set[str]) -> list[FieldError]:
    found: list[FieldError] = []
    for index, mount in enumerate(mounts):
        if not isinstance(mount, dict):
            continue
        name = mount.get("name") or ""
        if not name:
            found.append(field_errors.required(f"{path}[{index}].name", ""))
        elif name not in volumes:
            found.append(field_errors.FieldError("FieldValueNotFound", f"{path}[{index}].name", name))
        if not mount.get("mountPath"):
            found.append(field_errors.required(f"{path}[{index}].mountPath", ""))
    return found


def port_name(name: str) -> list[str]:
    """IsValidPortName (an IANA_SVC_NAME)."""
    problems = []
    if len(name) > 15:
        problems.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        problems.append("must contain at least one letter (a-z)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def _validate_ports(ports: list[Any], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    for index, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        where = f"{path}[{index}]"
        number = port.get("containerPort")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            found.append(field_errors.invalid(f"{where}.containerPort", number,
                                              "must be between 1 and 65535, inclusive"))
        if port.get("name"):
            found.extend(field_errors.invalid(f"{where}.name", port["name"], message)
                         for message in port_name(port["name"]))
    return found


def _validate_resources(resources: dict[str, Any], path: str) -> list[FieldError]:
    """Requests may not exceed limits (ValidateResourceRequirements)."""
    found: list[FieldError] = []
    limits = resources.get("limits") or {}
    for resource, request in (resources.get("requests") or {}).items():
        if resource not in limits:
            continue
        if Decimal(parse_quantity(request)) > Decimal(parse_quantity(limits[resource])):
            found.append(field_errors.invalid(
                f"{path}.requests", str(request), f"must be less than or equal to {resource} limit of"
                f" {limits[resource]}"))
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
