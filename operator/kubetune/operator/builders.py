"""Pure builders: (validated spec, settings) -> manifest dicts. No I/O.

Every child object is named deterministically (kubetune.api.names), owned by its job
through a controller ownerReference (so deleting the job removes it), and labelled so the
operator can find it again after a restart. The ConfigMap and Service are handed over to the
Job once it exists (ownership.job_owner_reference), so that they go when it goes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from ..api import EvalConfig, EvalJobSpec, FinetuneJobSpec, TrainerConfig, parse_uri
from ..api.common import PodResources, SecretRef, Tracking
from ..api.finetune import Evaluation, FinetuneResources
from ..api.names import config_map_name, eval_job_name, eval_run_job_name, train_job_name
from ..api.resources import API_VERSION, EVAL_JOB
from ..launch import trainer_command
from ..runtimes import PodExtras
from . import labels
from .generations import EVAL_APPLIED_LATER, FINETUNE_APPLIED_LATER, digest
from .settings import Settings

CONFIG_DIR = "/etc/kubetune"
CONFIG_FILE = "config.json"
PVC_ROOT = "/mnt/pvc"
CACHE_DIR = "/var/cache/kubetune"
TERMINATION_LOG = "/dev/termination-log"
CONTAINER = "trainer"
RENDEZVOUS_PORT = 29500
INVALID_INPUT_EXIT_CODE = 2
"""Trainer exit code for bad input (dataset, missing model): retrying cannot help."""


def owner_reference(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": API_VERSION, "kind": kind, "name": meta["name"], "uid": meta["uid"],
        "controller": True, "blockOwnerDeletion": True,
    }


def _metadata(name: str, kind: str, body: dict[str, Any], component: str,
              extra_labels: dict[str, str] | None = None,
              spec_digest: str | None = None) -> dict[str, Any]:
    meta = body["metadata"]
    annotations = {"annotations": {labels.SPEC_DIGEST: spec_digest}} if spec_digest else {}
    return {
        **annotations,
        "name": name,
        "namespace": meta["namespace"],
        "labels": {
            **labels.MANAGED_SELECTOR, labels.COMPONENT: component,
            labels.OWNER_LABEL[kind]: meta["name"], **(extra_labels or {}),
        },
        "ownerReferences": [owner_reference(kind, body)],
    }


def config_map(kind: str, body: dict[str, Any], config: TrainerConfig | EvalConfig) -> dict:
    """The ConfigMap with the trainer's (or evaluator's) config file."""
    component = "trainer" if kind == "FinetuneJob" else "evaluator"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(config_map_name(body["metadata"]["name"]), kind, body, component),
        "data": {CONFIG_FILE: config.model_dump_json(by_alias=True, exclude_none=True, indent=2)},
    }


def headless_service(body: dict[str, Any]) -> dict[str, Any]:
    """Gives the pods of a multi-node Job stable DNS names for the rendezvous."""
    name = train_job_name(body["metadata"]["name"])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, "FinetuneJob", body, "trainer"),
        "spec": {
            "clusterIP": "None",
            "selector": {labels.JOB_NAME: name},
            "publishNotReadyAddresses": True,  # the rendezvous happens before readiness
            "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT}],
        },
    }


def rendezvous_host(body: dict[str, Any]) -> str:
    """DNS name of the index-0 pod of a multi-node Job (hostname.subdomain)."""
    job = train_job_name(body["metadata"]["name"])
    return f"{job}-0.{job}"


def training_job(body: dict[str, Any], spec: FinetuneJobSpec, settings: Settings,
                 attempt: int = 1, pod: PodExtras | None = None) -> dict:
    """The batch/v1 Job that runs the trainer (Indexed, one pod per node, when nodes > 1).

    Multi-node Jobs run one gang attempt each: with static rendezvous a replacement pod
    cannot rejoin ranks that are still waiting on its dead predecessor, so the Job has
    backoffLimit 0 and fails as soon as one rank fails; the operator then deletes it and
    creates the next attempt's Job, whose ranks all resume from the last checkpoint
    (`spec.backoffLimit` counts these gang restarts). `attempt` is stamped on the Job.
    """
    name = train_job_name(body["metadata"]["name"])
    nodes = spec.resources.nodes
    queue = queue_of(spec, settings)
    command = trainer_command(
        gpus=spec.resources.gpus, nodes=nodes, config_path=f"{CONFIG_DIR}/{CONFIG_FILE}",
        rendezvous_host=rendezvous_host(body) if nodes > 1 else None, port=RENDEZVOUS_PORT,
    )
    pod = _pod_template(
        kind="FinetuneJob", body=body, component="trainer", command=command,
        resources=spec.resources, secrets=_secrets_of(spec), pvcs=_claims_of(spec),
        output_claims=_output_claims(spec.output.uri), image=spec.image, settings=settings,
        job_name=name, subdomain=name if nodes > 1 else None, extras=pod,
    )
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit if nodes == 1 else 0,
        "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
        # Kueue admits queued Jobs by unsuspending them; a user's suspend keeps them stopped.
        "suspend": spec.suspend or bool(queue),
        "completions": nodes,
        "parallelism": nodes,
        "podFailurePolicy": _pod_failure_policy(gang=nodes > 1),
        "template": pod,
    }
    if nodes > 1:
        job_spec["completionMode"] = "Indexed"
    if spec.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    extra = {labels.QUEUE_NAME: queue} if queue else {}
    metadata = _metadata(name, "FinetuneJob", body, "trainer", extra,
                         digest(spec.to_wire(), FINETUNE_APPLIED_LATER))
    if nodes > 1:
        metadata["annotations"][labels.ATTEMPT] = str(attempt)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": job_spec,
    }


def queue_of(spec: FinetuneJobSpec | EvalJobSpec, settings: Settings) -> str | None:
    """The Kueue LocalQueue of a job's Job, or None when Kueue does not manage it."""
    return spec.queue_name or settings.default_queue_name or None


def evaluation_job(body: dict[str, Any], config: EvalConfig, spec: EvalJobSpec,
                   settings: Settings, secrets: Iterable[SecretRef], uris: Iterable[str],
                   pod: PodExtras | None = None) -> dict:
    """The batch/v1 Job that runs the evaluator for an EvalJob."""
    name = eval_run_job_name(body["metadata"]["name"])
    command = ["python", "-m", "kubetune_trainer.eval", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"]
    uris = list(uris)
    pod = _pod_template(
        kind="EvalJob", body=body, component="evaluator", command=command,
        resources=spec.resources, secrets=list(secrets), pvcs=_claims(uris),
        output_claims=_output_claims(config.output_uri), image=spec.image, settings=settings,
        job_name=name, subdomain=None, extras=pod,
    )
    queue = queue_of(spec, settings)
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
        # Created suspended when queued: Kueue starts it on admission (as for training).
        "suspend": bool(queue),
        "podFailurePolicy": _pod_failure_policy(),
        "template": pod,
    }
    if spec.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    extra = {labels.QUEUE_NAME: queue} if queue else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(name, "EvalJob", body, "evaluator", extra,
                              spec_digest=digest(spec.to_wire(), EVAL_APPLIED_LATER)),
        "spec": job_spec,
    }


def eval_job_from_finetune(body: dict[str, Any], spec: FinetuneJobSpec,
                           evaluation: Evaluation,
                           runtime: dict[str, Any] | None = None) -> dict[str, Any]:
    """The EvalJob a FinetuneJob creates from spec.evaluation once training succeeded;
    `runtime`: the FinetuneJob's status.runtime, named by the EvalJob so that its pod gets
    the same env and volumes."""
    name = body["metadata"]["name"]
    resources: FinetuneResources = spec.resources
    eval_spec = {
        "model": {"finetuneJobRef": {"name": name}, "task": spec.model.task},
        "compareBaseline": evaluation.compare_baseline,
        "dataset": evaluation.dataset.to_wire(),
        "thresholds": {name: value if isinstance(value, int | float) else value.to_wire()
                       for name, value in evaluation.thresholds.items()},
        "resources": PodResources(
            **{k: getattr(resources, k) for k in PodResources.model_fields}).to_wire(),
    }
    if spec.model.secret_ref:
        eval_spec["model"]["secretRef"] = spec.model.secret_ref.to_wire()
    if evaluation.metrics:
        eval_spec["metrics"] = list(evaluation.metrics)
    if spec.image:
        eval_spec["image"] = spec.image
    if runtime:
        eval_spec["runtimeRef"] = {"kind": runtime["kind"], "name": runtime["name"]}
    if spec.tracking:
        eval_spec["tracking"] = spec.tracking.to_wire()
    eval_spec["output"] = {"uri": parse_uri(spec.output.uri).join("eval")}
    if spec.output.secret_ref:
        eval_spec["output"]["secretRef"] = spec.output.secret_ref.to_wire()
    return {
        "apiVersion": API_VERSION,
        "kind": EVAL_JOB.kind,
        "metadata": _metadata(eval_job_name(name), "FinetuneJob", body, "evaluation",
                              spec_digest=digest(evaluation.to_wire())),
        "spec": EvalJobSpec.model_validate(eval_spec).to_wire(),
    }


def _pod_failure_policy(gang: bool = False) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        # Bad input: the trainer said so with exit code 2; retrying cannot help.
        {"action": "FailJob", "onExitCodes": {
            "containerName": CONTAINER, "operator": "In", "values": [INVALID_INPUT_EXIT_CODE]}},
    ]
    if gang:
        # One lost rank stops the whole gang at once (an evicted node too): the operator
        # restarts every rank together in the next attempt's Job.
        rules.append({"action": "FailJob", "onPodConditions": [
            {"type": "DisruptionTarget", "status": "True"}]})
    else:
        # Preemption and eviction are not the trainer's fault: retry without counting.
        rules.append({"action": "Ignore", "onPodConditions": [
            {"type": "DisruptionTarget", "status": "True"}]})
    return {"rules": rules}


def _pod_template(*, kind: str, body: dict[str, Any], component: str, command: list[str],
                  resources: PodResources, secrets: list[SecretRef], pvcs: list[str],
                  output_claims: set[str], image: str | None, settings: Settings,
                  job_name: str, subdomain: str | None,
                  extras: PodExtras | None = None) -> dict[str, Any]:
    """The pod of a Job. `extras`: what a runtime adds (env, which may replace HF_HOME or
    HOME but never the operator's own variables; volumes and mounts beside the operator's;
    labels, annotations and a service account whose token stays unmounted)."""
    owner = body["metadata"]["name"]
    extras = extras or PodExtras()
    gpus = resources.gpus
    volumes = [
        {"name": "config", "configMap": {"name": config_map_name(owner)}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},  # NCCL and dataloaders need /dev/shm
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
    ]
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": CACHE_DIR},
    ]
    env = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        # Every IP of a dual-stack pod (comma-separated): the trainer serves progress on each.
        {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "KUBETUNE_TERMINATION_LOG", "value": TERMINATION_LOG},
        {"name": "KUBETUNE_PROGRESS_PORT", "value": str(settings.progress_port)},
        {"name": "KUBETUNE_CACHE_DIR", "value": CACHE_DIR},
        {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
        {"name": "HOME", "value": "/tmp"},
    ]
    for claim in pvcs:
        volume = _volume_name(claim)
        volumes.append({"name": volume, "persistentVolumeClaim": {
            "claimName": claim, "readOnly": claim not in output_claims}})
        mounts.append({"name": volume, "mountPath": f"{PVC_ROOT}/{claim}",
                       "readOnly": claim not in output_claims})
        env.append({"name": pvc_path_env(claim), "value": f"{PVC_ROOT}/{claim}"})
    env += [{"name": k, "value": v} for k, v in sorted(settings.pod_env.items())]
    replaced = {e["name"] for e in extras.env}
    env = [e for e in env if e["name"] not in replaced] + list(extras.env)
    volumes += extras.volumes
    mounts += extras.volume_mounts
    limits: dict[str, str] = {}
    if gpus:
        limits[resources.gpu_resource_name] = str(gpus)
    if resources.cpu:
        limits["cpu"] = resources.cpu
    if resources.memory:
        limits["memory"] = resources.memory
    container = {
        "name": CONTAINER,
        "image": image or settings.trainer_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "env": env,
        # Secrets reach the trainer only as environment, never in the config or status.
        "envFrom": [{"secretRef": {"name": name}} for name in _unique(s.name for s in secrets)],
        "ports": [{"name": "progress", "containerPort": settings.progress_port}],
        "volumeMounts": mounts,
        "resources": {"limits": limits, "requests": dict(limits)},
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
    }
    if subdomain:
        container["ports"].append({"name": "rendezvous", "containerPort": RENDEZVOUS_PORT})
    node_selector = {**(settings.default_node_selector if gpus else {}), **resources.node_selector}
    tolerations = [*(settings.default_tolerations if gpus else ()),
                   *(t.to_wire() for t in resources.tolerations)]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 120,  # time to write a checkpoint on SIGTERM
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if subdomain:
        pod_spec["subdomain"] = subdomain
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = list(tolerations)
    if resources.priority_class_name:
        pod_spec["priorityClassName"] = resources.priority_class_name
    if extras.service_account_name:
        pod_spec["serviceAccountName"] = extras.service_account_name
    metadata: dict[str, Any] = {"labels": {
        **extras.labels,
        **labels.MANAGED_SELECTOR, labels.COMPONENT: component, labels.OWNER_LABEL[kind]: owner,
    }}
    if extras.annotations:
        metadata["annotations"] = dict(extras.annotations)
    return {"metadata": metadata, "spec": pod_spec}


def pvc_path_env(claim: str) -> str:
    """Env var telling the trainer where a claim is mounted (see kubetune_trainer.storage)."""
    return "KUBETUNE_PVC_PATH_" + re.sub(r"[^A-Za-z0-9]", "_", claim).upper()


def _volume_name(claim: str) -> str:
    """A DNS label, distinct per claim: claims differing only in '.' and '-' (`a.b`, `a-b`)
    or past the 63-character cut would otherwise share a volume name, and the API server
    refuses a pod with duplicate volume names or a name ending in '-'."""
    digest = hashlib.sha256(claim.encode()).hexdigest()[:8]
    return f"pvc-{re.sub(r'[^a-z0-9-]', '-', claim)[:46].strip('-')}-{digest}"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _secrets_of(spec: FinetuneJobSpec) -> list[SecretRef]:
    return [s for s in (spec.model.secret_ref, spec.dataset.secret_ref, spec.output.secret_ref,
                        tracking_secret(spec.tracking)) if s is not None]


def tracking_secret(tracking: Tracking | None) -> SecretRef | None:
    """The MLflow credentials' Secret (MLFLOW_TRACKING_*), passed as env like the others."""
    return tracking.mlflow.secret_ref if tracking and tracking.mlflow else None


def _uris_of(spec: FinetuneJobSpec) -> list[str]:
    uris = [spec.model.uri, spec.dataset.uri, spec.output.uri]
    if spec.dataset.validation and spec.dataset.validation.uri:
        uris.append(spec.dataset.validation.uri)
    return uris


def _claims(uris: Iterable[str | None]) -> list[str]:
    return _unique(parse_uri(u).authority for u in uris if u and u.startswith("pvc://"))


def _claims_of(spec: FinetuneJobSpec) -> list[str]:
    return _claims(_uris_of(spec))


def _output_claims(uri: str | None) -> set[str]:
    return set(_claims([uri]))
