"""ClusterFinetuneRuntime and FinetuneRuntime: what a platform team standardises for jobs.

A runtime holds the trainer image, default resources and placement, env, volumes, default
hyperparameters per method and pod-template overrides. A FinetuneJob or EvalJob names one
with `spec.runtimeRef`, or gets the runtime marked `spec.default: true`. Values in the job win
over the runtime's, except the fields listed in `spec.locked` (see kubetune.runtime, where
the merge is).

The fields a runtime adds to pods are checked here so that a runtime cannot weaken the
restricted pod the operator builds: volumes are only PVCs, ConfigMaps, Secrets and emptyDirs
(no hostPath: the model forbids every other source), env takes secrets only through
secretKeyRef, and nothing may replace the operator's own env, volumes, mounts or labels.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, Literal

from pydantic import Field, create_model, model_validator

from .base import SpecModel, StatusModel, cel, raise_rule_problems
from .common import RUNTIME_KINDS, Name, OptionalName, ResolvedRuntime, RuntimeRef, Toleration
from .finetune import Hyperparameters
from .kube_syntax import (
    LABEL_KEYS_RULE,
    ExtendedResourceName,
    Image,
    Quantity,
    label_map,
    qualified_name_problems,
    syntax_type,
)

# --- env ------------------------------------------------------------------------------------

ENV_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
CONFIG_KEY = r"[-._a-zA-Z0-9]+"
__all__ = ["RUNTIME_KINDS", "FinetuneRuntimeSpec", "ResolvedRuntime", "RuntimeRef"]

RESERVED_ENV = ("POD_IP", "POD_IPS", "POD_NAME")
RESERVED_ENV_PREFIX = "KUBETUNE_"
"""Env the operator sets and the trainer depends on; a runtime may not replace it."""

_EnvName = Annotated[str, Field(min_length=1, max_length=253, pattern=f"^{ENV_NAME}$")]
_ConfigKey = Annotated[str, Field(min_length=1, max_length=253, pattern=f"^{CONFIG_KEY}$")]


class KeySelector(SpecModel):
    """One key of a Secret or ConfigMap in the job's namespace."""

    name: Name
    """Name of the Secret or ConfigMap."""
    key: _ConfigKey
    """The key whose value becomes the variable."""
    optional: bool | None = None
    """true: the pod starts even if the object or key is missing."""


class EnvVarSource(SpecModel):
    """Where a variable's value comes from: a Secret's key (the only way to pass secrets)
    or a ConfigMap's key."""

    secret_key_ref: KeySelector | None = None
    """A key of a Secret in the job's namespace."""
    config_map_key_ref: KeySelector | None = None
    """A key of a ConfigMap in the job's namespace."""

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("set exactly one of secretKeyRef and configMapKeyRef")
        return self

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("has(self.secretKeyRef) != has(self.configMapKeyRef)",
            "set exactly one of secretKeyRef and configMapKeyRef")]}}


class EnvVar(SpecModel):
    """An environment variable of the trainer container: a literal value (never a secret)
    or a reference."""

    name: _EnvName
    """Variable name; POD_IP, POD_IPS, POD_NAME and KUBETUNE_* are the operator's."""
    value: str | None = Field(None, max_length=32_768)
    """Literal value; visible to anyone who can read the runtime, so never a secret."""
    value_from: EnvVarSource | None = None
    """A Secret or ConfigMap key."""

    @model_validator(mode="after")
    def _rules(self) -> EnvVar:
        problems = []
        if (self.value is None) == (self.value_from is None):
            problems.append(("", "set exactly one of value and valueFrom"))
        if self.name in RESERVED_ENV or self.name.startswith(RESERVED_ENV_PREFIX):
            problems.append(("name", f"{self.name} is set by the operator (reserved: "
                                     f"{', '.join(RESERVED_ENV)}, {RESERVED_ENV_PREFIX}*)"))
        raise_rule_problems(problems)
        return self

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("has(self.value) != has(self.valueFrom)", "set exactly one of value and valueFrom"),
        cel("!(self.name in " + str(list(RESERVED_ENV)) + ")"
            f" && !self.name.startsWith('{RESERVED_ENV_PREFIX}')",
            f"name is set by the operator (reserved: {', '.join(RESERVED_ENV)}, "
            f"{RESERVED_ENV_PREFIX}*)", ".name"),
    ]}}


# --- volumes --------------------------------------------------------------------------------

DnsLabel = Annotated[str, Field(min_length=1, max_length=63,
                                pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
RESERVED_VOLUMES = ("config", "dshm", "tmp", "cache")
RESERVED_VOLUME_PREFIX = "pvc-"
RESERVED_PATHS = ("/etc/kubetune", "/dev/shm", "/tmp", "/var/cache/kubetune", "/mnt/pvc",
                  "/dev/termination-log")
"""Where the operator mounts its own volumes (kubetune.operator.builders)."""


class PvcSource(SpecModel):
    """A PersistentVolumeClaim in the job's namespace (e.g. a shared Hugging Face cache)."""

    claim_name: Name
    """Name of the claim."""
    read_only: bool = False
    """Mount read-only."""


class ConfigMapSource(SpecModel):
    """A ConfigMap in the job's namespace, as files."""

    name: Name
    """Name of the ConfigMap."""
    optional: bool | None = None
    """true: the pod starts even if the ConfigMap is missing."""


class SecretSource(SpecModel):
    """A Secret in the job's namespace, as files."""

    secret_name: Name
    """Name of the Secret."""
    optional: bool | None = None
    """true: the pod starts even if the Secret is missing."""


class EmptyDirSource(SpecModel):
    """Scratch space that lives as long as the pod."""

    medium: Literal["", "Memory"] = ""
    """"" (node disk) or Memory (tmpfs)."""
    size_limit: Quantity | None = None
    """Most space the volume may use."""


_SOURCES = ("persistentVolumeClaim", "configMap", "secret", "emptyDir")


class RuntimeVolume(SpecModel):
    """A volume added to the pods. Only these sources exist here: no hostPath or other
    node-level access, so the restricted pod stays restricted."""

    name: DnsLabel
    """Volume name (a DNS label; config, dshm, tmp, cache and pvc-* are the operator's)."""
    persistent_volume_claim: PvcSource | None = None
    """A PersistentVolumeClaim."""
    config_map: ConfigMapSource | None = None
    """A ConfigMap."""
    secret: SecretSource | None = None
    """A Secret."""
    empty_dir: EmptyDirSource | None = None
    """An emptyDir."""

    @model_validator(mode="after")
    def _rules(self) -> RuntimeVolume:
        problems = []
        sources = [self.persistent_volume_claim, self.config_map, self.secret, self.empty_dir]
        if sum(s is not None for s in sources) != 1:
            problems.append(("", f"set exactly one of {', '.join(_SOURCES)}"))
        if self.name in RESERVED_VOLUMES or self.name.startswith(RESERVED_VOLUME_PREFIX):
            problems.append(("name", f"{self.name} is the operator's (reserved: "
                                     f"{', '.join(RESERVED_VOLUMES)}, {RESERVED_VOLUME_PREFIX}*)"))
        raise_rule_problems(problems)
        return self

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(" + ".join(f"(has(self.{s}) ? 1 : 0)" for s in _SOURCES) + " == 1",
            f"set exactly one of {', '.join(_SOURCES)}"),
        cel("!(self.name in " + str(list(RESERVED_VOLUMES)) + ")"
            f" && !self.name.startsWith('{RESERVED_VOLUME_PREFIX}')",
            f"name is the operator's (reserved: {', '.join(RESERVED_VOLUMES)}, "
            f"{RESERVED_VOLUME_PREFIX}*)", ".name"),
    ]}}


def mount_path_problems(path: str) -> list[str]:
    """Why a runtime's mountPath is unusable: relative, or over the operator's mounts."""
    if not path.startswith("/"):
        return ["must be an absolute path"]
    if ".." in path.split("/") or ":" in path:
        return ["must not contain '..' or ':'"]
    norm = posixpath.normpath(path)
    for reserved in RESERVED_PATHS:
        if norm == reserved or norm.startswith(reserved + "/") or reserved.startswith(
                norm.rstrip("/") + "/"):
            return [f"overlaps {reserved}, where the operator mounts its own volume"]
    return []


def _overlap_cel(reserved: str) -> str:
    return (f"self == '{reserved}' || self.startsWith('{reserved}/')"
            f" || '{reserved}'.startsWith(self.endsWith('/') ? self : self + '/')")


MountPath = syntax_type(
    mount_path_problems, min_length=1, max_length=4096, pattern="/.*",
    rules=(cel("!self.matches('(^|/)[.][.](/|$)') && !self.contains(':')",
               "must not contain '..' or ':'"),
           cel("!(" + " || ".join(f"({_overlap_cel(r)})" for r in RESERVED_PATHS) + ")",
               "must not overlap the operator's mounts (" + ", ".join(RESERVED_PATHS) + ")")))


class VolumeMount(SpecModel):
    """Where a runtime volume appears in the trainer container."""

    name: DnsLabel
    """Name of a volume in spec.volumes."""
    mount_path: MountPath
    """Absolute path; must not overlap the operator's mounts (/etc/kubetune, /dev/shm, /tmp,
    /var/cache/kubetune, /mnt/pvc)."""
    read_only: bool = False
    """Mount read-only."""
    sub_path: Annotated[str, Field(max_length=4096, pattern=r"^[^/].*$|^$")] | None = None
    """A path inside the volume to mount instead of its root (relative, no '..')."""

    @model_validator(mode="after")
    def _sub_path_relative(self) -> VolumeMount:
        if self.sub_path and ".." in self.sub_path.split("/"):
            raise_rule_problems([("subPath", "must be relative and must not contain '..'")])
        return self


# --- resources, hyperparameters, pod template -----------------------------------------------

class RuntimeResources(SpecModel):
    """Default GPUs and placement; a job's own value wins unless the field is locked."""

    gpus: int | None = Field(None, ge=0, le=16)
    """GPUs per pod."""
    gpu_resource_name: ExtendedResourceName | None = None
    """Extended resource name GPUs are requested as (e.g. amd.com/gpu)."""
    gpu_memory: Quantity | None = None
    """Memory of one GPU, for the fit check."""
    cpu: Quantity | None = None
    """CPU request and limit per pod."""
    memory: Quantity | None = None
    """Memory request and limit per pod."""
    node_selector: label_map(32) | None = None  # type: ignore[valid-type]
    """Node labels; merged with the job's, the job's value winning per key."""
    tolerations: list[Toleration] | None = Field(None, max_length=32)
    """Tolerations; the job's are added to these."""
    priority_class_name: OptionalName | None = None
    """PriorityClass of the pods."""


def _all_optional(model: type[SpecModel], name: str, doc: str) -> type[SpecModel]:
    """`model` with every field optional and unset by default: a runtime's defaults name only
    what they change, with the same bounds as the job's own fields."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[field_name] = (annotation | None, Field(None, description=info.description))
    return create_model(name, __base__=SpecModel, __doc__=doc, **fields)


RuntimeHyperparameters = _all_optional(
    Hyperparameters, "RuntimeHyperparameters",
    "Hyperparameter defaults for one method; unset fields keep the built-in defaults.")


class MethodDefaults(SpecModel):
    """Default hyperparameters per method.type."""

    lora: RuntimeHyperparameters | None = None  # type: ignore[valid-type]
    """Defaults for jobs with method.type lora."""
    qlora: RuntimeHyperparameters | None = None  # type: ignore[valid-type]
    """Defaults for jobs with method.type qlora."""
    full: RuntimeHyperparameters | None = None  # type: ignore[valid-type]
    """Defaults for jobs with method.type full."""
    dpo: RuntimeHyperparameters | None = None  # type: ignore[valid-type]
    """Defaults for jobs with method.type dpo."""


RESERVED_LABEL_PREFIXES = ("kubetune.io/", "app.kubernetes.io/", "batch.kubernetes.io/",
                           "kueue.x-k8s.io/")


def _annotation_keys(values: dict[str, str]) -> dict[str, str]:
    bad = {key: problems for key in values if (problems := qualified_name_problems(key))}
    if bad:
        raise ValueError("; ".join(f"key {k!r}: {'; '.join(p)}" for k, p in bad.items()))
    return values


class PodTemplateOverrides(SpecModel):
    """Added to the pods' metadata and spec."""

    labels: label_map(32) = Field(default_factory=dict)  # type: ignore[valid-type]
    """Pod labels (not under kubetune.io/, app.kubernetes.io/, batch.kubernetes.io/ or
    kueue.x-k8s.io/, which the operator and Kubernetes own)."""
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=32,
        json_schema_extra={"x-kubernetes-validations": [LABEL_KEYS_RULE]})
    """Pod annotations."""
    service_account_name: Name | None = None
    """ServiceAccount of the pods (e.g. for workload identity); its token is still not
    mounted into the trainer."""

    @model_validator(mode="after")
    def _own_keys(self) -> PodTemplateOverrides:
        problems = []
        _annotation_keys(self.annotations)
        for where, keys in (("labels", self.labels), ("annotations", self.annotations)):
            if owned := [k for k in keys if k.startswith(RESERVED_LABEL_PREFIXES)]:
                problems.append((where, f"{', '.join(owned)}: keys under "
                                        f"{', '.join(RESERVED_LABEL_PREFIXES)} are reserved"))
        raise_rule_problems(problems)
        return self


# --- locks and the spec ---------------------------------------------------------------------

def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


LOCKABLE = (
    "image",
    *(f"resources.{_camel(f)}" for f in RuntimeResources.model_fields),
    *(f"hyperparameters.{_camel(f)}" for f in Hyperparameters.model_fields),
)
"""Fields a runtime can lock (the job's own spec paths)."""
Lockable = Literal[LOCKABLE]  # type: ignore[valid-type]


def _list_map(key: str) -> dict[str, Any]:
    """A list whose items are unique by `key`: the API server refuses duplicates."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}


class FinetuneRuntimeSpec(SpecModel):
    """A runtime template: image, placement, env, volumes and defaults for jobs that name it."""

    default: bool = False
    """Used by jobs without spec.runtimeRef: a FinetuneRuntime in the job's namespace first,
    else a ClusterFinetuneRuntime. Two marked at the same level: such jobs wait (Validated=False,
    MultipleDefaultRuntimes) until one is unmarked."""
    image: Image | None = None
    """Trainer (and evaluator) image."""
    resources: RuntimeResources = Field(default_factory=RuntimeResources)
    """Default GPUs and placement."""
    env: list[EnvVar] = Field(default_factory=list, max_length=64,
        json_schema_extra=_list_map("name"))
    """Environment variables of the trainer container (secrets only through secretKeyRef)."""
    volumes: list[RuntimeVolume] = Field(default_factory=list, max_length=16,
        json_schema_extra=_list_map("name"))
    """Volumes of the pods: PVCs, ConfigMaps, Secrets or emptyDirs."""
    volume_mounts: list[VolumeMount] = Field(default_factory=list, max_length=32,
        json_schema_extra=_list_map("mountPath"))
    """Where spec.volumes appear in the trainer container."""
    hyperparameters: MethodDefaults = Field(default_factory=MethodDefaults)
    """Default hyperparameters per method (FinetuneJobs only)."""
    pod_template: PodTemplateOverrides = Field(default_factory=PodTemplateOverrides)
    """Pod labels, annotations and service account."""
    locked: list[Lockable] = Field(default_factory=list, max_length=len(LOCKABLE))
    """Fields a job may not change: the runtime's value is used, and a job that sets a
    different value is refused (Validated=False, RuntimeFieldLocked)."""

    @model_validator(mode="after")
    def _rules(self) -> FinetuneRuntimeSpec:
        problems = []
        names = [v.name for v in self.volumes]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            problems.append(("volumes", f"names must be unique: {', '.join(dupes)}"))
        for i, mount in enumerate(self.volume_mounts):
            if mount.name not in names:
                problems.append((f"volumeMounts[{i}].name",
                                 f"{mount.name} must name a volume in spec.volumes"))
        paths = [m.mount_path for m in self.volume_mounts]
        if dupes := sorted({p for p in paths if paths.count(p) > 1}):
            problems.append(("volumeMounts", f"mountPaths must be unique: {', '.join(dupes)}"))
        env = [e.name for e in self.env]
        if dupes := sorted({n for n in env if env.count(n) > 1}):
            problems.append(("env", f"names must be unique: {', '.join(dupes)}"))
        for field in self.locked:
            if _runtime_value(self, field) is None:
                problems.append(("locked", f"{field} is locked but the runtime does not set it"))
        raise_rule_problems(problems)
        return self


    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes)"
            " && self.volumes.exists(v, v.name == m.name))",
            "volumeMounts: each name must name a volume in spec.volumes"),
    ]}}


def _runtime_value(spec: FinetuneRuntimeSpec, field: str) -> Any:
    """The runtime's value of a lockable field (None: unset). A locked hyperparameter needs a
    value for every method the runtime sets defaults for; one is enough here."""
    section, _, name = field.partition(".")
    if section == "image":
        return spec.image
    snake = {_camel(f): f for f in (*RuntimeResources.model_fields, *Hyperparameters.model_fields)}
    if section == "resources":
        return getattr(spec.resources, snake[name])
    values = [getattr(d, snake[name]) for d in (spec.hyperparameters.lora,
              spec.hyperparameters.qlora, spec.hyperparameters.full) if d is not None]
    return next((v for v in values if v is not None), None)


class RuntimeStatus(StatusModel):
    """Runtimes have no status of their own; jobs record the runtime they resolved."""
