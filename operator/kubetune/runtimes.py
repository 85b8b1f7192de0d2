"""Resolving a job against its runtime template: pure functions, shared by the operator,
`kubetune validate --runtime` and `kubetune plan --runtime`.

Which runtime: `spec.runtimeRef` (a FinetuneRuntime only from the job's own namespace), else
the one marked `spec.default: true` (a FinetuneRuntime in the job's namespace first, then a
ClusterFinetuneRuntime); two marked defaults at the same level are an error naming both.

How values merge: the job's value wins over the runtime's, except for the fields the runtime
locks, where a different value in the job is an error naming the runtime and the field. The
API server writes the CRD's defaults into every job, so a job value equal to the built-in
default counts as not set (kubetune cannot tell `gpuResourceName: nvidia.com/gpu` written by
hand from the default). Maps (nodeSelector) merge key by key, the job's keys winning; lists
(tolerations) are the runtime's followed by the job's. Env, volumes, volume mounts and the
pod-template overrides exist only in the runtime and are added to the pods.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .api import EvalJobSpec, FinetuneJobSpec
from .api.common import PodResources
from .api.finetune import Hyperparameters
from .api.runtime import FinetuneRuntimeSpec, RuntimeResources

RUNTIME_NOT_FOUND = "RuntimeNotFound"
MULTIPLE_DEFAULT_RUNTIMES = "MultipleDefaultRuntimes"
RUNTIME_FIELD_LOCKED = "RuntimeFieldLocked"
INVALID_RUNTIME = "InvalidRuntime"

JobSpec = FinetuneJobSpec | EvalJobSpec


class RuntimeProblem(Exception):
    """The job cannot be resolved: `reason` is the Validated condition's reason."""

    def __init__(self, reason: str, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.reason, self.problems = reason, problems


@dataclass(frozen=True)
class PodExtras:
    """What a runtime adds to the pods beyond the job's own fields."""

    env: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    service_account_name: str | None = None


@dataclass(frozen=True)
class Resolution:
    """A job's spec with its runtime applied, what the runtime adds to pods, and the record
    of the runtime for status.runtime (None without a runtime)."""

    spec: Any
    pod: PodExtras | None = None
    record: dict[str, Any] | None = None


def runtime_label(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', 'runtime')} {where}{meta.get('name', '')}"


def select_runtime(spec: JobSpec, namespace: str, cluster_runtimes: list[dict[str, Any]],
                   namespaced_runtimes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The runtime object a job resolves against, or None. `namespaced_runtimes` may hold
    other namespaces' runtimes: only the job's own namespace is ever looked at."""
    local = [r for r in namespaced_runtimes if (r.get("metadata") or {}).get("namespace") == namespace]
    ref = spec.runtime_ref
    if ref is not None:
        pool = local if ref.kind == "FinetuneRuntime" else cluster_runtimes
        found = next((r for r in pool if r["metadata"]["name"] == ref.name), None)
        if found is None:
            where = f" in namespace {namespace}" if ref.kind == "FinetuneRuntime" else ""
            raise RuntimeProblem(RUNTIME_NOT_FOUND, [
                f"spec.runtimeRef: {ref.kind} {ref.name} does not exist{where}; the job waits "
                "for it"])
        return found
    for pool in (local, cluster_runtimes):
        marked = sorted((r for r in pool if (r.get("spec") or {}).get("default") is True),
                        key=lambda r: r["metadata"]["name"])
        if len(marked) > 1:
            raise RuntimeProblem(MULTIPLE_DEFAULT_RUNTIMES, [
                f"spec.runtimeRef: unset, and several runtimes are marked default "
                f"({', '.join(runtime_label(r) for r in marked)}); set spec.runtimeRef or "
                "unmark all but one"])
        if marked:
            return marked[0]
    return None


def runtime_hash(runtime_spec: dict[str, Any]) -> str:
    text = json.dumps(runtime_spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_of(runtime: dict[str, Any]) -> dict[str, Any]:
    """status.runtime: which runtime, which version of it, and its spec as used."""
    meta = runtime.get("metadata") or {}
    spec = FinetuneRuntimeSpec.model_validate(runtime.get("spec") or {}).to_wire()
    record = {"kind": runtime.get("kind"), "name": meta.get("name"), "uid": meta.get("uid"),
              "generation": meta.get("generation"),
              "resourceVersion": meta.get("resourceVersion"),
              "hash": runtime_hash(spec), "spec": spec}
    return {k: v for k, v in record.items() if v is not None}


def from_record(record: dict[str, Any]) -> dict[str, Any]:
    """The runtime object as recorded in status.runtime (what a started job keeps using)."""
    return {"kind": record.get("kind"), "metadata": {"name": record.get("name", "")},
            "spec": record.get("spec") or {}}


def resolve(spec: JobSpec, runtime: dict[str, Any] | None) -> Resolution:
    """`spec` with `runtime` applied (see the module's docstring for the rules). Raises
    RuntimeProblem naming the runtime and each locked field the job sets differently."""
    if runtime is None:
        return Resolution(spec)
    label = runtime_label(runtime)
    try:
        rt = FinetuneRuntimeSpec.model_validate(runtime.get("spec") or {})
    except ValidationError as error:
        raise RuntimeProblem(INVALID_RUNTIME, [
            f"{label}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
        ]) from None
    locked = set(rt.locked)
    problems: list[str] = []
    wire = spec.to_wire()

    def pick(path: str, job_value: Any, default: Any, runtime_value: Any) -> Any:
        if runtime_value is None:
            return job_value
        if job_value is None or job_value == default:
            return runtime_value
        if path in locked and job_value != runtime_value:
            problems.append(f"spec.{path}: {job_value!r} differs from {runtime_value!r}, which "
                            f"{label} locks; remove the field or set it to the runtime's value")
            return runtime_value
        return job_value

    wire["image"] = pick("image", wire.get("image"), None, rt.image)
    resources = wire.setdefault("resources", {})
    for name, info in RuntimeResources.model_fields.items():
        key = info.alias or name
        runtime_value = _wire_value(getattr(rt.resources, name))
        default = _wire_value(PodResources.model_fields[name].get_default(call_default_factory=True))
        job_value = resources.get(key)
        combinable = key in ("nodeSelector", "tolerations") and runtime_value is not None
        if combinable and job_value and not (
                f"resources.{key}" in locked and job_value != runtime_value):
            # maps merge key by key (the job's keys win); lists are the runtime's, then the job's
            job_value = runtime_value = (
                {**runtime_value, **job_value} if key == "nodeSelector"
                else runtime_value + [t for t in job_value if t not in runtime_value])
        resources[key] = pick(f"resources.{key}", job_value, default, runtime_value)
    if isinstance(spec, FinetuneJobSpec):
        defaults = getattr(rt.hyperparameters, spec.method.type)
        hyper = wire.setdefault("hyperparameters", {})
        for name, info in Hyperparameters.model_fields.items():
            key = info.alias or name
            runtime_value = _wire_value(getattr(defaults, name)) if defaults else None
            default = _wire_value(info.get_default(call_default_factory=True))
            hyper[key] = pick(f"hyperparameters.{key}", hyper.get(key), default, runtime_value)
    if problems:
        raise RuntimeProblem(RUNTIME_FIELD_LOCKED, problems)
    wire["resources"] = _no_none(resources)
    if "hyperparameters" in wire:
        wire["hyperparameters"] = _no_none(wire["hyperparameters"])
    try:
        resolved = type(spec).model_validate(_no_none(wire))
    except ValidationError as error:
        raise RuntimeProblem(INVALID_RUNTIME, [
            f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']} (with {label} applied)"
            for e in error.errors()]) from None
    pod = PodExtras(
        env=[e.to_wire() for e in rt.env],
        volumes=[v.to_wire() for v in rt.volumes],
        volume_mounts=[m.to_wire() for m in rt.volume_mounts],
        labels=dict(rt.pod_template.labels),
        annotations=dict(rt.pod_template.annotations),
        service_account_name=rt.pod_template.service_account_name,
    )
    return Resolution(resolved, pod, record_of(runtime))


def _no_none(values: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (values or {}).items() if v is not None}


def _wire_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_wire_value(v) for v in value]
    return value


def resolve_offline(doc: dict[str, Any], runtimes: list[dict[str, Any]]) -> Resolution:
    """A FinetuneJob or EvalJob manifest resolved against runtime manifests from files
    (`kubetune validate/plan --runtime FILE`), as the operator would once all are applied: a
    FinetuneRuntime without a namespace counts as being in the job's."""
    spec_model = FinetuneJobSpec if doc.get("kind") == "FinetuneJob" else EvalJobSpec
    spec = spec_model.model_validate(doc.get("spec") or {})
    namespace = (doc.get("metadata") or {}).get("namespace") or "default"
    cluster = [r for r in runtimes if r.get("kind") == "ClusterFinetuneRuntime"]
    local = []
    for runtime in runtimes:
        if runtime.get("kind") == "FinetuneRuntime":
            meta = {**(runtime.get("metadata") or {})}
            meta.setdefault("namespace", namespace)
            local.append({**runtime, "metadata": meta})
    return resolve(spec, select_runtime(spec, namespace, cluster, local))
