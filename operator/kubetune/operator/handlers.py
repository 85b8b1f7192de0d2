"""The kopf handlers: thin. Each watch event updates a cache and reconciles one job.

All handlers are `on.event` handlers, which kopf neither persists nor retries: the
reconcile is level-based, so it needs no per-handler progress in annotations (that saves
API writes per job), and a failed reconcile is retried here with a growing delay.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from ..api.resources import GROUP, VERSION
from . import handoff, labels, policy_gate
from .fit import make_fit_checker
from .kube import Kube
from .metrics import Metrics
from .ownership import controller_reference
from .progress import poll_forever
from .reconcile import eval_jobs_waiting_on, sync_eval, sync_finetune, waiting_for_runtime
from .settings import Settings
from .state import Key, OperatorState

log = logging.getLogger("kubetune.operator")
registry = kopf.OperatorRegistry()
MAX_RETRY_DELAY = 60.0
CHILD_RESOURCES = (("batch", "v1", "jobs"), ("", "v1", "pods"), ("", "v1", "configmaps"),
                   ("", "v1", "services"))
"""Watched with a server-side label selector: the API server sends only kubetune's objects,
not every Pod of the cluster (kopf's `labels=` filters only after receiving)."""
MANAGED_SELECTOR_TEXT = ",".join(f"{k}={v}" for k, v in labels.MANAGED_SELECTOR.items())


def watch_only_managed_children(settings: kopf.OperatorSettings) -> None:
    """kopf 1.45 passes settings.watching.label_selectors as `labelSelector` on the list and
    watch requests of the matching resources (kopf/_cogs/clients/watching.py)."""
    for resource in CHILD_RESOURCES:
        settings.watching.label_selectors[resource] = MANAGED_SELECTOR_TEXT


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: KUBECONFIG (as the `kubernetes` client)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup(registry=registry)
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: Settings = memo.get("settings") or Settings.from_env()
    settings.posting.level = logging.INFO  # kopf.event(): Events for condition transitions
    watch_only_managed_children(settings)  # before the watchers start, which is after this
    # The chart installs the CRDs before the operator, and least RBAC grants it no list on
    # CustomResourceDefinitions: without this, kopf retries that 403 at every start and then
    # falls back to this same static mode with a warning (kopf/_core/reactor/observation.py).
    settings.scanning.disabled = True
    kube = memo.get("kube") or Kube.connect()
    metrics = memo.get("metrics") or Metrics()
    kube.on_reply = metrics.record_api_reply
    state = OperatorState(settings=config, kube=kube, metrics=metrics,
                          check_fit=memo.get("fit_checker") or make_fit_checker(config))
    # Fill the caches of children before the first reconcile, so that a restarted operator
    # sees the Jobs it created before and never creates one twice.
    # Policies before the first reconcile too: no job may start unjudged after a restart.
    for policy in await kube.list_all("ClusterFinetunePolicy"):
        state.policies[policy["metadata"]["name"]] = policy
    metrics.policies.set(len(state.policies))
    # Namespace labels come from the watch, or one GET the first time a policy needs them.
    for namespace in config.watch_namespaces or (None,):
        for job in await kube.list_managed("Job", namespace):
            state.jobs[_key(job)] = job
        for pod in await kube.list_managed("Pod", namespace):
            _cache_pod(state, pod)
        for kind in ("ConfigMap", "Service"):
            for child in await kube.list_managed(kind, namespace):
                state.children(kind)[_key(child)] = child
    # Runtimes before the first job: a job must not start without the default runtime.
    for namespace in config.watch_namespaces or (None,):
        for runtime in await kube.list_runtimes("FinetuneRuntime", namespace):
            _cache_runtime(state, runtime)
    for runtime in await kube.list_runtimes("ClusterFinetuneRuntime", None):
        _cache_runtime(state, runtime)
    memo.state = state
    memo.poller = asyncio.create_task(poll_forever(state))
    log.info("kubetune operator started (namespaces: %s)",
             ", ".join(config.watch_namespaces) or "all")


@kopf.on.cleanup(registry=registry)
async def stop(memo: kopf.Memo, **_: Any) -> None:
    poller = memo.get("poller")
    if poller:
        poller.cancel()
    state: OperatorState | None = memo.get("state")
    if state:  # its HTTP session belongs to this event loop, which is ending
        await state.kube.aclose()


@kopf.on.event(GROUP, VERSION, "finetunejobs", registry=registry)
async def finetunejob_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    await _on_job_event(memo.state, "FinetuneJob", event)


@kopf.on.event(GROUP, VERSION, "evaljobs", registry=registry)
async def evaljob_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    await _on_job_event(memo.state, "EvalJob", event)


@kopf.on.event(GROUP, VERSION, "finetuneruntimes", registry=registry)
async def finetuneruntime_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    await _on_runtime_event(memo.state, event)


@kopf.on.event(GROUP, VERSION, "clusterfinetuneruntimes", registry=registry)
async def clusterfinetuneruntime_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    await _on_runtime_event(memo.state, event)


async def _on_runtime_event(state: OperatorState, event: dict) -> None:
    """Cached; jobs waiting for a runtime (missing, or several defaults) look again. A job
    that has resolved its runtime keeps the recorded one: nothing else is reconciled."""
    runtime = event["object"]
    if event["type"] == "DELETED":
        meta = runtime["metadata"]
        state.runtimes.pop((runtime.get("kind", ""), meta.get("namespace") or "", meta["name"]), None)
    else:
        _cache_runtime(state, runtime)
    for kind in ("FinetuneJob", "EvalJob"):
        for key in list(state.bodies(kind)):
            if waiting_for_runtime(state.current_status(kind, key)):
                _later(state, 0, kind, key)


def _cache_runtime(state: OperatorState, runtime: dict[str, Any]) -> None:
    meta = runtime["metadata"]
    state.runtimes[(runtime.get("kind", ""), meta.get("namespace") or "", meta["name"])] = runtime


@kopf.on.event(GROUP, VERSION, "clusterfinetunepolicies", registry=registry)
async def policy_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    """A policy added, changed or removed: jobs it held back are looked at again."""
    state: OperatorState = memo.state
    policy = event["object"]
    if event["type"] == "DELETED":
        state.policies.pop(policy["metadata"]["name"], None)
    else:
        state.policies[policy["metadata"]["name"]] = policy
    state.metrics.policies.set(len(state.policies))
    _wake_held(state, None)


@kopf.on.event("", "v1", "namespaces", registry=registry)
async def namespace_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    """Namespace labels decide which policies apply (their namespaceSelector)."""
    state: OperatorState = memo.state
    namespace = event["object"]["metadata"]
    if event["type"] == "DELETED":
        state.namespaces.pop(namespace["name"], None)
        return
    labels_now = namespace.get("labels") or {}
    if state.namespaces.get(namespace["name"]) != labels_now:
        state.namespaces[namespace["name"]] = labels_now
        _wake_held(state, namespace["name"])


def _wake_held(state: OperatorState, namespace: str | None, but: tuple | None = None) -> None:
    for kind, ns, name in policy_gate.held_in(state, namespace):
        if (kind, ns, name) != but:
            _later(state, 0, kind, (ns, name))


@kopf.on.event("batch", "v1", "jobs", labels=labels.MANAGED_SELECTOR, registry=registry)
async def child_job_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    state: OperatorState = memo.state
    job = event["object"]
    if event["type"] == "DELETED":
        state.jobs.pop(_key(job), None)
    else:
        state.jobs[_key(job)] = job
    await _sync_owner(state, job)


@kopf.on.event("", "v1", "configmaps", labels=labels.MANAGED_SELECTOR, registry=registry)
async def config_map_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    await _on_part_event(memo.state, "ConfigMap", event)


@kopf.on.event("", "v1", "services", labels=labels.MANAGED_SELECTOR, registry=registry)
async def service_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    await _on_part_event(memo.state, "Service", event)


async def _on_part_event(state: OperatorState, kind: str, event: dict) -> None:
    """A ConfigMap or Service: cached; its deletion may free the name a job waits for
    (WaitingForPreviousRun), and a new one may need handing over to its Job."""
    child = event["object"]
    if event["type"] == "DELETED":
        state.children(kind).pop(_key(child), None)
    else:
        state.children(kind)[_key(child)] = child
        if (controller_reference(child) or {}).get("kind") == "Job":
            return  # handed over to its Job already: nothing for the job to do
    await _sync_owner(state, child)


@kopf.on.event("", "v1", "pods", labels=labels.MANAGED_SELECTOR, registry=registry)
async def pod_event(event: dict, memo: kopf.Memo, **_: Any) -> None:
    state: OperatorState = memo.state
    pod = event["object"]
    if event["type"] == "DELETED":
        job_name = (pod["metadata"].get("labels") or {}).get(labels.JOB_NAME, "")
        state.pods.get((pod["metadata"]["namespace"], job_name), {}).pop(
            pod["metadata"]["name"], None)
    else:
        _cache_pod(state, pod)
    await _sync_owner(state, pod)


async def _on_job_event(state: OperatorState, kind: str, event: dict) -> None:
    body = event["object"]
    key = _key(body)
    if event["type"] == "DELETED":
        state.forget(kind, key)
        state.metrics.forget_job(kind, *key)
        _wake_held(state, key[0])  # its run and GPU-hours no longer count
        await _sync_owner(state, body)  # a FinetuneJob may wait for its EvalJob's name
        return
    cached = state.bodies(kind).get(key)
    if cached is not None and cached["metadata"].get("uid") != body["metadata"].get("uid"):
        # Deleted and created again, the DELETED event lost to a watch restart: nothing
        # known of the earlier incarnation (its last written status) may carry over.
        state.forget(kind, key)
        state.metrics.forget_job(kind, *key)
    first_seen = key not in state.bodies(kind)
    state.bodies(kind)[key] = body
    await reconcile(state, kind, key)
    if kind == "EvalJob" and (owner := handoff.waiting_owner(state, body)):
        _later(state, 0, "FinetuneJob", (key[0], owner))  # its KServe object waits for this
    if first_seen and kind == "FinetuneJob":
        # A restarted operator's watches fill their caches in no particular order: an
        # EvalJob reconciled before its FinetuneJob was seen waits for it, and the
        # FinetuneJob's status, unchanged, would not wake it.
        for eval_key in eval_jobs_waiting_on(state, *key):
            _later(state, 0, "EvalJob", eval_key)


async def _sync_owner(state: OperatorState, child: dict[str, Any]) -> None:
    child_labels = child["metadata"].get("labels") or {}
    namespace = child["metadata"]["namespace"]
    for kind, label in labels.OWNER_LABEL.items():
        if owner := child_labels.get(label):
            await reconcile(state, kind, (namespace, owner))


async def reconcile(state: OperatorState, kind: str, key: Key) -> None:
    """Reconcile one job under its lock; on error, retry later with a growing delay."""
    lock_key = (kind, *key)
    async with state.locks[lock_key]:
        try:
            before = state.current_status(kind, key)
            again = await (sync_finetune if kind == "FinetuneJob" else sync_eval)(state, key)
            state.retries.pop(lock_key, None)
            if again is not None:  # e.g. a child create refused with 403: try later, slowly
                _later(state, again, kind, key)
        except Exception:
            state.metrics.reconcile_errors.labels(kind).inc()
            attempt = state.retries.get(lock_key, 0) + 1
            state.retries[lock_key] = attempt
            delay = min(MAX_RETRY_DELAY, 0.5 * 2**attempt)
            log.exception("reconcile of %s %s/%s failed; retrying in %.1fs", kind, *key, delay)
            _later(state, delay, kind, key)
            return
    after = state.current_status(kind, key)
    if after.get("phase") != before.get("phase") and after.get("phase") in ("Succeeded", "Failed"):
        # A slot (maxRunningJobs) is free, and its GPU-hours are final: held jobs may start.
        _wake_held(state, key[0], but=lock_key)
    if kind == "FinetuneJob" and after != before:
        # EvalJobs waiting on this FinetuneJob see its new phase and result.
        for eval_key in eval_jobs_waiting_on(state, *key):
            _later(state, 0, "EvalJob", eval_key)


def _later(state: OperatorState, delay: float, kind: str, key: Key) -> None:
    async def run() -> None:
        await asyncio.sleep(delay)
        if state.bodies(kind).get(key) is not None:
            await reconcile(state, kind, key)

    task = asyncio.create_task(run())
    state.background.add(task)
    task.add_done_callback(state.background.discard)


def _key(obj: dict[str, Any]) -> Key:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def _cache_pod(state: OperatorState, pod: dict[str, Any]) -> None:
    meta = pod["metadata"]
    job_name = (meta.get("labels") or {}).get(labels.JOB_NAME) or (
        meta.get("labels") or {}).get("job-name", "")
    state.pods[(meta["namespace"], job_name)][meta["name"]] = pod
