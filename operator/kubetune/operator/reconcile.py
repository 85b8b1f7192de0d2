"""Reconcile FinetuneJobs and EvalJobs: from the cached objects to children and status.

Level-based and idempotent: `sync_finetune` and `sync_eval` compute what should exist and
what the status should say from the spec and the observed Job and Pods, every time, and
write only what differs. Watch events of the job itself and of its children call them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..admission.placement import placement_problems
from ..api import EvalJobSpec, FinetuneJobSpec, eval_config_for, trainer_config_for
from ..api.evaljob import BaselineTraining
from ..api.names import config_map_name, eval_run_job_name, train_job_name
from ..api.trainer_config import EvalModelConfig
from ..runtimes import (
    INVALID_RUNTIME,
    MULTIPLE_DEFAULT_RUNTIMES,
    RUNTIME_FIELD_LOCKED,
    RUNTIME_NOT_FOUND,
    Resolution,
    RuntimeProblem,
    from_record,
    resolve,
    runtime_label,
    select_runtime,
)
from ..validation import validate_document
from . import builders, handoff, policy_gate
from . import conditions as c
from . import generations as g
from . import observe as o
from . import ownership as own
from .events import post_condition_events, post_warning
from .kube import ApiError
from .labels import SKIP_FIT_CHECK
from .monotonic import forward_only
from .state import Key, OperatorState
from .status import (
    REJECTED_FAILS,
    eval_status,
    finetune_status,
    invalid_status,
    redact,
    rejected_status,
    runtime_waiting_status,
)

REJECTION_CODES = (400, 403, 404, 422)
"""Answers to a child create that retrying at once cannot change (see `rejected_status`)."""


class ChildRejected(Exception):
    """The API server refused to create one of a job's children."""

    def __init__(self, code: int, child: str, message: str) -> None:
        super().__init__(f"{child}: HTTP {code}: {message}")
        self.code, self.child, self.message = code, child, message

log = logging.getLogger("kubetune.reconcile")
TERMINAL = ("Succeeded", "Failed")


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spec_problems(body: dict[str, Any], allowed_schemes: tuple[str, ...]) -> list[str]:
    """Everything wrong with the object, as `FIELD_PATH: what must hold` lines."""
    problems = [f"{p.path}: {p.message}" for p in validate_document(body)]
    if problems:
        return problems
    for path, uri in _uris(body.get("spec") or {}):
        if problem := _scheme_problem(uri, allowed_schemes):
            problems.append(f"{path}: {problem}")
    return problems


def checked_spec_problems(state: OperatorState, kind: str, body: dict[str, Any]) -> list[str]:
    """spec_problems, where a check that raises marks the object invalid instead of failing
    the reconcile: retrying cannot help (the same spec raises again), so an error here would
    be a retry loop on this object for ever. It is counted, and logged for a bug report."""
    try:
        return spec_problems(body, state.settings.allowed_uri_schemes)
    except Exception as error:
        state.metrics.spec_check_errors.labels(kind).inc()
        log.exception("the spec check of %s %s/%s raised", kind,
                      body["metadata"].get("namespace"), body["metadata"].get("name"))
        return [f"spec: could not be checked ({type(error).__name__}: {str(error)[:200]}); "
                "this is a kubetune bug: please report it with the spec"]


def _scheme_problem(uri: str, allowed_schemes: tuple[str, ...]) -> str | None:
    scheme = uri.split("://", 1)[0]
    if scheme in allowed_schemes:
        return None
    return (f"scheme {scheme}:// is not allowed on this cluster; "
            f"allowed: {', '.join(s + '://' for s in allowed_schemes)}")


def _uris(node: Any, path: str = "spec"):
    """Storage URIs (models, data, outputs); spec.tracking's uri is a server's address."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "tracking" and path == "spec":
                continue
            if key == "uri" and isinstance(value, str):
                yield f"{path}.uri", value
            else:
                yield from _uris(value, f"{path}.{key}")


@dataclass(frozen=True)
class Visit:
    """One reconcile of one job: the object, the status it had, and when."""

    body: dict[str, Any]
    old: dict[str, Any]
    generation: int | None
    now: str
    job_name: str
    job: dict[str, Any] | None
    """This job's own Job (its controller ownerReference is this job's uid), or None."""
    in_the_way: str | None = None
    """An earlier run's Job holds the name: what to tell the user while waiting for it."""
    policies: tuple[dict[str, Any], ...] = ()
    """The ClusterFinetunePolicies that apply to the job's namespace."""

    @property
    def uid(self) -> str:
        return self.body["metadata"].get("uid", "")


async def _begin(state: OperatorState, kind: str, key: Key) -> Visit | None:
    """The job to reconcile, or None: gone, being deleted, invalid (then its status says
    why, and it is never retried), or finished after running, with its Job already removed
    by ttlSecondsAfterFinished: a finished run is never started again, whatever changes
    later (the spec sections that define it are immutable anyway). That status was derived
    from this job's own Job only: another incarnation's Job is never read into it."""
    body = state.bodies(kind).get(key)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    namespace, name = key
    job_name = train_job_name(name) if kind == "FinetuneJob" else eval_run_job_name(name)
    job = state.jobs.get((namespace, job_name))
    uid = body["metadata"].get("uid")
    stale = None
    if job is not None and not own.belongs_to(job, [uid]):
        stale, job = own.in_the_way(job, kind), None
    visit = Visit(body, state.current_status(kind, key), body["metadata"].get("generation"),
                  now_text(), job_name, job, stale)
    if job is None and visit.old.get("phase") in TERMINAL and visit.old.get("jobName"):
        return None
    if _rejected_for_good(visit.old, visit.generation):
        return None  # the API server refused this spec's child: only a new spec is tried
    if _violated_for_good(visit.old, visit.generation):
        return None  # a policy refused this spec: a relaxed policy does not revive it
    problems, reason = checked_spec_problems(state, kind, body), c.INVALID_SPEC
    if not problems:
        # Defence in depth behind the chart's admission policy, which may be off.
        problems, reason = placement_problems(body, state.settings.placement_policy), c.NOT_PERMITTED
    if not problems:
        visit = replace(visit, policies=tuple(await policy_gate.applicable(state, namespace)))
        if job is None and not visit.old.get("jobName"):
            # Judged before it starts, never after: a tightened policy stops no running work.
            problems, reason = policy_gate.problems(kind, body, visit.policies), c.POLICY_VIOLATION
    if problems:
        types = c.FINETUNE_TYPES if kind == "FinetuneJob" else c.EVAL_TYPES
        await write_status(state, kind, body, visit.old, invalid_status(
            problems, visit.generation, visit.old, visit.now, types, reason))
        return None
    return visit


def _violated_for_good(old: dict[str, Any], generation: int | None) -> bool:
    validated = c.find(old.get("conditions"), c.VALIDATED) or {}
    return (old.get("phase") == "Failed" and old.get("observedGeneration") == generation
            and validated.get("reason") == c.POLICY_VIOLATION)


def _rejected_for_good(old: dict[str, Any], generation: int | None) -> bool:
    return (old.get("phase") == "Failed" and old.get("observedGeneration") == generation
            and (old.get("failure") or {}).get("reason") == c.CHILD_REJECTED)


RUNTIME_RETRY_SECONDS = 30.0
"""How soon a job waiting for its runtime looks again without a runtime watch event."""
RUNTIME_WAITING = (RUNTIME_NOT_FOUND, MULTIPLE_DEFAULT_RUNTIMES, INVALID_RUNTIME)


def waiting_for_runtime(status: dict[str, Any]) -> bool:
    """Whether a job's status says it waits for a runtime (a runtime event wakes it)."""
    return (c.find(status.get("conditions"), c.VALIDATED) or {}).get("reason") in RUNTIME_WAITING


def resolve_runtime(state: OperatorState, kind: str, visit: Visit, spec: Any) -> Resolution:
    """The job resolved against its runtime. Once recorded in status.runtime, the recorded
    runtime is used for ever, so an edited or deleted runtime never changes a job that has
    started (a multi-node restart builds the same pods). A job that started without one
    (no record, but a Job) keeps running without. Raises RuntimeProblem."""
    body, old = visit.body, visit.old
    recorded = old.get("runtime")
    if recorded:
        return replace(resolve(spec, from_record(recorded)), record=recorded)
    if old.get("jobName"):
        return Resolution(spec)
    runtime = select_runtime(spec, body["metadata"]["namespace"],
                             state.runtimes_of("ClusterFinetuneRuntime"),
                             state.runtimes_of("FinetuneRuntime"))
    resolution = resolve(spec, runtime)
    if runtime is not None:
        # The chart's allowlists (image, priority class, tolerations, nodeSelector) hold for
        # what the runtime brings too: the admission policy only sees the job's own fields.
        resolved = {**body, "spec": resolution.spec.to_wire()}
        if problems := placement_problems(resolved, state.settings.placement_policy):
            raise RuntimeProblem(c.NOT_PERMITTED, [
                f"{p} (with {runtime_label(runtime)} applied)" for p in problems])
        # The ClusterFinetunePolicies hold for the resolved job too (e.g. a runtime's GPUs
        # against maxGpusPerPod). The image is judged as the job wrote it: a policy's
        # allowedImages [] means "only runtimes' images", so a runtime's image passes.
        judged = {**resolved, "spec": {k: v for k, v in resolved["spec"].items() if k != "image"}}
        if spec.image:
            judged["spec"]["image"] = spec.image
        if problems := policy_gate.problems(kind, judged, list(visit.policies)):
            raise RuntimeProblem(c.POLICY_VIOLATION, [
                f"{p} (with {runtime_label(runtime)} applied)" for p in problems])
    return resolution


async def _runtime_problem(state: OperatorState, kind: str, visit: Visit,
                           problem: RuntimeProblem) -> float | None:
    """A locked field or a refused placement: Failed until the spec changes. A missing or
    ambiguous runtime, or one that makes the job invalid: Pending, looked at again."""
    types = c.FINETUNE_TYPES if kind == "FinetuneJob" else c.EVAL_TYPES
    if problem.reason in (RUNTIME_FIELD_LOCKED, c.NOT_PERMITTED, c.POLICY_VIOLATION):
        await write_status(state, kind, visit.body, visit.old, invalid_status(
            problem.problems, visit.generation, visit.old, visit.now, types, problem.reason))
        return None
    await write_status(state, kind, visit.body, visit.old, runtime_waiting_status(
        problem.problems, problem.reason, visit.generation, visit.old, visit.now, types))
    return RUNTIME_RETRY_SECONDS


def _waiting_after_rejection(state: OperatorState, kind: str, key: Key,
                             generation: int | None) -> bool:
    """After a 403 or 404, no create is tried before the retry time, whatever the events;
    a new generation (a changed spec) is tried at once."""
    rejected = state.rejected.get((kind, *key))
    if rejected is None:
        return False
    if rejected[0] != generation or time.monotonic() >= rejected[1]:
        state.rejected.pop((kind, *key), None)
        return False
    return True


async def _create_child(state: OperatorState, obj: dict[str, Any]) -> dict[str, Any] | None:
    """Create a child; a refusal that retrying cannot cure becomes `ChildRejected`."""
    try:
        return await state.kube.create(obj)
    except ApiError as error:
        if error.status in REJECTION_CODES:
            meta = obj["metadata"]
            raise ChildRejected(error.status, f"{obj['kind']} {meta['namespace']}/{meta['name']}",
                                error.message) from error
        raise


async def _report_rejection(state: OperatorState, kind: str, visit: Visit,
                            rejection: ChildRejected) -> float | None:
    """Write the rejection into status; return when to try again (None: not for this spec)."""
    key = (visit.body["metadata"]["namespace"], visit.body["metadata"]["name"])
    delay = state.settings.rejected_retry_seconds
    log.warning("%s %s/%s: %s", kind, *key, rejection)
    status = rejected_status(
        code=rejection.code, child=rejection.child, server_message=rejection.message,
        generation=visit.generation, old=visit.old, now=visit.now, retry_seconds=delay,
        types=c.FINETUNE_TYPES if kind == "FinetuneJob" else c.EVAL_TYPES)
    await write_status(state, kind, visit.body, visit.old, status)
    if status["phase"] == "Failed":
        return None
    state.rejected[(kind, *key)] = (visit.generation, time.monotonic() + delay)
    return delay


# --- FinetuneJob ----------------------------------------------------------------------------

async def sync_finetune(state: OperatorState, key: Key) -> float | None:
    """Reconcile one FinetuneJob; the answer, when not None, asks for another reconcile
    after that many seconds."""
    visit = await _begin(state, "FinetuneJob", key)
    if visit is None or _waiting_after_rejection(state, "FinetuneJob", key, visit.generation):
        return None
    body, old, generation, now = visit.body, visit.old, visit.generation, visit.now
    job_name, job = visit.job_name, visit.job
    namespace = key[0]
    try:
        resolution = resolve_runtime(state, "FinetuneJob", visit,
                                     FinetuneJobSpec.model_validate(body["spec"]))
    except RuntimeProblem as problem:
        return await _runtime_problem(state, "FinetuneJob", visit, problem)
    spec: FinetuneJobSpec = policy_gate.with_defaults(resolution.spec, visit.policies)
    fit = await state.check_fit(body, spec)
    blocked = fit.fits is False
    if blocked and (body["metadata"].get("annotations") or {}).get(SKIP_FIT_CHECK) == "true":
        blocked = False
        fit = replace(fit, message=f"{fit.message} (running anyway: {SKIP_FIT_CHECK})")
    nodes = spec.resources.nodes
    # Between two gang attempts (multi-node): the status says so, and counts the attempts.
    restarting = nodes > 1 and (c.find(old.get("conditions"), c.RUNNING) or {}).get(
        "reason") == c.RESTARTING
    next_attempt = (old.get("attempts") or 0) + 1 if restarting else 1
    pods = state.pods_of(namespace, job_name)
    waiting = visit.in_the_way
    held = None
    if job is None and not blocked and not waiting and not old.get("jobName"):
        held = policy_gate.hold(state, "FinetuneJob", key, spec.resources.gpus, visit.policies)
    if (job is None and not blocked and not waiting and not held
            and not (restarting and _any_running(pods))):
        try:
            job, waiting = await _create_training(state, body, spec, next_attempt,
                                                  strategy=(fit.plan or {}).get("strategy"),
                                                  resolution=resolution)
        except ChildRejected as rejection:
            return await _report_rejection(state, "FinetuneJob", visit, rejection)
        if key not in state.finetunejobs:
            return None  # deleted while we looked
    queue = builders.queue_of(spec, state.settings)
    again = None
    if job is not None:
        await _hand_over(state, job, [("ConfigMap", config_map_name(key[1])),
                                      ("Service", job_name)])
        job, again = await _sync_suspend(state, spec, job, queue)
    if restarting and (job is None or job["metadata"].get("deletionTimestamp")):
        # The failed attempt's Job and pods (and, as the Job owns them, its ConfigMap and
        # Service) are going; the next starts when they are gone.
        run = o.restarting(job_name, next_attempt, nodes)
    elif waiting:
        run = o.RunObservation(o.ABSENT, own.WAITING_FOR_PREVIOUS_RUN, waiting)
    elif held:
        run = o.RunObservation(o.ABSENT, held.reason, held.message)
        again = _sooner(again, held.recheck_after)
    else:
        run = o.observe_run(job, state.pods_of_job(job), queue=queue,
                            suspend_requested=spec.suspend)
        run = o.gang_verdict(run, job, spec.backoff_limit, nodes) if job else run
        again = _sooner(again, run.recheck_after)
    eval_name = old.get("evalJobName")  # created once; not re-created if a user deletes it
    if run.state == o.SUCCEEDED and spec.evaluation and not eval_name:
        try:
            eval_name = await _create_evaluation(state, body, spec, generation,
                                                 resolution.record)
        except ChildRejected as rejection:
            again = _evaluation_rejected(state, body, generation, rejection)
    wire = spec.to_wire()
    applied = (g.carries(job, wire, g.FINETUNE_APPLIED_LATER)
               and g.carries(state.evaljobs.get((namespace, eval_name or "")),
                             (spec.evaluation.to_wire() if spec.evaluation else {})))
    status = finetune_status(
        generation=g.observed_generation(generation, old, applied), old=old, fit=fit,
        blocked=blocked, run=run, suspend_requested=spec.suspend, eval_job_name=eval_name,
        gpus_per_pod=spec.resources.gpus, now=now,
        job_name=None if waiting or held else job_name)
    if resolution.record:
        status["runtime"] = resolution.record
    serving = (await handoff.sync(state, body, spec, old, status.get("result") or {}, eval_name)
               if run.state == o.SUCCEEDED else None)
    if serving:
        status["serving"] = serving
    _record_outcome(state, "FinetuneJob", namespace, old, status)
    if await write_status(state, "FinetuneJob", body, old, status):
        handoff.announce(body, old.get("serving"), serving)
    # After the write: the budget reads each job's status from what was last stored.
    policy_gate.account(state, namespace, visit.policies, old, status)
    if run.state == o.RESTARTING and job is not None and not job["metadata"].get(
            "deletionTimestamp"):
        # Status first: it carries the attempt count across the gap with no Job at all.
        await state.kube.delete_job(namespace, job_name, job["metadata"].get("uid", ""))
    return again


def _sooner(a: float | None, b: float | None) -> float | None:
    """The earlier of two 'reconcile again after' delays (None: not needed)."""
    return b if a is None else a if b is None else min(a, b)


def _any_running(pods: list[dict[str, Any]]) -> bool:
    return any((p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") for p in pods)


Created = tuple[dict[str, Any] | None, str | None]
"""This job's Job (None if not made yet), or what is in the way (an earlier run's child)."""


async def _create_training(state: OperatorState, body: dict[str, Any],
                           spec: FinetuneJobSpec, attempt: int = 1,
                           strategy: str | None = None,
                           resolution: Resolution | None = None) -> Created:
    """`strategy`: the planner's ddp/fsdp for resources.strategy auto (None: not planned)."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if not await _still_exists(state, "FinetuneJob", body):
        return None, None
    config = trainer_config_for(name, namespace, spec, uid=body["metadata"]["uid"],
                                strategy=strategy)  # type: ignore[arg-type]
    parts = [builders.config_map("FinetuneJob", body, config)]
    if spec.resources.nodes > 1:
        parts.append(builders.headless_service(body))
    return await _create_children(state, "FinetuneJob", body, parts,
                                  builders.training_job(body, spec, state.settings, attempt,
                                                        pod=resolution and resolution.pod))


async def _create_children(state: OperatorState, kind: str, body: dict[str, Any],
                           parts: list[dict[str, Any]], job: dict[str, Any]) -> Created:
    """Create the ConfigMap (and Service), then the Job, then hand the first ones over to
    the Job. What exists already counts only if it is this job's (an operator restart);
    an earlier run's object stops everything: its pods would mount the wrong config."""
    uid = body["metadata"]["uid"]
    for part in parts:
        existing, _ = await _create_or_read(state, part)
        if not own.belongs_to(existing, [uid]):
            return None, own.in_the_way(existing, kind)
    created, new = await _create_or_read(state, job)
    if not own.belongs_to(created, [uid]):
        return None, own.in_the_way(created, kind)
    if new:
        state.metrics.created.labels(kind, body["metadata"]["namespace"]).inc()
        _observe_start_latency(state, kind, body)
    key = (created["metadata"]["namespace"], created["metadata"]["name"])
    if not own.belongs_to(state.jobs.get(key), [uid]):
        state.jobs[key] = created
    created = state.jobs[key]
    await _hand_over(state, created, [(p["kind"], p["metadata"]["name"]) for p in parts])
    return created, None


async def _create_or_read(state: OperatorState,
                          obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The object as created (True), or the one that holds its name already (False)."""
    kind, meta = obj["kind"], obj["metadata"]
    key = (meta["namespace"], meta["name"])
    cached = state.children(kind).get(key)
    if cached is not None and not own.belongs_to(cached, own_uids(obj)):
        return cached, False  # the watch says it is in the way: no need to ask the server
    created = await _create_child(state, obj)
    if created is not None:
        state.children(kind)[key] = created
        return created, True
    existing = await state.kube.get(kind, *key)
    if existing is None:  # in the way a moment ago, gone now: retried by the caller
        raise RuntimeError(f"{kind} {key[0]}/{key[1]} existed and was deleted; retrying")
    return existing, False


def own_uids(obj: dict[str, Any]) -> list[str]:
    return [ref["uid"] for ref in obj["metadata"].get("ownerReferences") or []]


async def _hand_over(state: OperatorState, job: dict[str, Any],
                     parts: list[tuple[str, str]]) -> None:
    """Make the Job the controller of its ConfigMap and Service, so that they go with it
    when ttlSecondsAfterFinished deletes it. Only parts still controlled by the Job's own
    owner are moved: an earlier run's parts are never touched."""
    namespace = job["metadata"]["namespace"]
    owner_uid = own.controller_uid(job)
    for kind, name in parts:
        part = state.children(kind).get((namespace, name))
        if part is None or not own.belongs_to(part, [owner_uid]):
            continue
        try:
            moved = await state.kube.set_controller(part, own.job_owner_reference(job))
        except ApiError as error:
            if error.status not in (404, 409):
                raise
            continue  # changed or gone: the watch event of that brings the next reconcile
        state.children(kind)[(namespace, name)] = moved


async def _still_exists(state: OperatorState, kind: str, body: dict[str, Any]) -> bool:
    meta = body["metadata"]
    if await state.kube.still_exists(kind, meta["namespace"], meta["name"], meta.get("uid", "")):
        return True
    state.forget(kind, (meta["namespace"], meta["name"]))  # its DELETED event is on the way
    return False


WORKLOAD_LOOKUP_RETRY_SECONDS = 10.0
"""How soon to look again for the Workload of a queued Job that a user suspended, when Kueue
has not created it yet."""


async def _sync_suspend(state: OperatorState, spec: FinetuneJobSpec, job: dict[str, Any],
                        queue: str | None) -> tuple[dict[str, Any], float | None]:
    """Carry spec.suspend to the run; returns the Job and, if needed, when to look again.

    Without a queue, the operator suspends and resumes the Job itself. With a queue, Kueue
    owns Job.spec.suspend (it unsuspends on admission and suspends on preemption), and
    flipping it would fight Kueue; a user's suspend goes through the switch Kueue documents
    for stopping a workload instead: Workload spec.active false (Kueue evicts it, suspends
    the Job and does not requeue it), true again to requeue.
    """
    meta = job["metadata"]
    job_spec = job.get("spec") or {}
    if queue is None:
        if spec.suspend != bool(job_spec.get("suspend")):
            await state.kube.set_job_suspended(meta["namespace"], meta["name"], spec.suspend)
            job = {**job, "spec": {**job_spec, "suspend": spec.suspend}}
            state.jobs[(meta["namespace"], meta["name"])] = job
        return job, None
    if o.job_finished(job):
        return job, None
    wanted = not spec.suspend
    uid = meta.get("uid", "")
    if uid in state.workload_active:
        if state.workload_active[uid] == wanted:
            return job, None  # done before
    elif wanted and not job_spec.get("suspend"):
        return job, None  # admitted and running: nothing to change
    # Not known yet (a new Job, a suspend asked, or a restarted operator): look it up.
    workload = await state.kube.workload_of(meta["namespace"], uid)
    if workload is None:
        return job, (WORKLOAD_LOOKUP_RETRY_SECONDS if spec.suspend else None)
    if (workload.get("spec") or {}).get("active", True) != wanted:
        await state.kube.set_workload_active(meta["namespace"], workload["metadata"]["name"],
                                             wanted)
    state.workload_active[uid] = wanted
    return job, None


async def _create_evaluation(state: OperatorState, body: dict[str, Any],
                             spec: FinetuneJobSpec, generation: int | None,
                             runtime: dict[str, Any] | None = None) -> str | None:
    """Create the EvalJob of spec.evaluation; None while an earlier refusal holds, or while
    an earlier run's EvalJob holds its name (its deletion brings the next reconcile)."""
    key = (EVALUATION_OF, body["metadata"]["namespace"], body["metadata"]["name"])
    rejected = state.rejected.get(key)
    if rejected and rejected[0] == generation and time.monotonic() < rejected[1]:
        return None
    eval_job = builders.eval_job_from_finetune(body, spec, spec.evaluation, runtime)
    existing, _ = await _create_or_read(state, eval_job)
    state.rejected.pop(key, None)
    if not own.belongs_to(existing, [body["metadata"]["uid"]]):
        log.info("%s", own.in_the_way(existing, "FinetuneJob"))
        return None
    return eval_job["metadata"]["name"]


EVALUATION_OF = "FinetuneJob.evaluation"
"""`state.rejected` key kind for the EvalJob a FinetuneJob creates."""


def _evaluation_rejected(state: OperatorState, body: dict[str, Any], generation: int | None,
                         rejection: ChildRejected) -> float | None:
    """The training succeeded, so the FinetuneJob keeps its phase; a Warning Event says why
    the evaluation is missing. 400/422 are not retried for this spec, 403/404 slowly."""
    meta = body["metadata"]
    delay = state.settings.rejected_retry_seconds
    message = redact(f"the API server refused to create {rejection.child} "
                     f"(HTTP {rejection.code}): {rejection.message}")
    post_warning(body, c.FORBIDDEN if rejection.code == 403 else c.CHILD_REJECTED, message)
    forever = rejection.code in REJECTED_FAILS
    state.rejected[(EVALUATION_OF, meta["namespace"], meta["name"])] = (
        generation, float("inf") if forever else time.monotonic() + delay)
    return None if forever else delay


def _observe_start_latency(state: OperatorState, kind: str, body: dict[str, Any]) -> None:
    created = o.parse_time(body["metadata"].get("creationTimestamp"))
    if created:
        state.metrics.creation_to_start.labels(kind).observe(
            max(0.0, (datetime.now(UTC) - created).total_seconds()))


def _record_outcome(state: OperatorState, kind: str, namespace: str, old: dict[str, Any],
                    new: dict[str, Any]) -> None:
    """Counters and histograms move once per transition, not once per reconcile."""
    phase = new.get("phase")
    delta = (new.get("gpuSeconds") or 0) - (old.get("gpuSeconds") or 0)
    if delta > 0:
        state.metrics.gpu_seconds.labels(namespace).inc(delta)
    if phase == old.get("phase") or phase not in TERMINAL:
        return
    if phase == "Succeeded":
        state.metrics.succeeded.labels(kind, namespace).inc()
    else:
        reason = (new.get("failure") or {}).get("reason", "Unknown")
        state.metrics.failed.labels(kind, namespace, reason).inc()
    start, end = o.parse_time(new.get("startTime")), o.parse_time(new.get("completionTime"))
    if start and end:
        seconds = (end - start).total_seconds()
        state.metrics.duration.labels(kind, namespace, phase).observe(max(0.0, seconds))


# --- EvalJob --------------------------------------------------------------------------------

async def sync_eval(state: OperatorState, key: Key) -> float | None:
    """Reconcile one EvalJob; like `sync_finetune`, it may ask to be called again later."""
    visit = await _begin(state, "EvalJob", key)
    if visit is None or _waiting_after_rejection(state, "EvalJob", key, visit.generation):
        return None
    body, old, generation, now = visit.body, visit.old, visit.generation, visit.now
    job_name, job = visit.job_name, visit.job
    namespace, name = key
    try:
        resolution = resolve_runtime(state, "EvalJob", visit,
                                     EvalJobSpec.model_validate(body["spec"]))
    except RuntimeProblem as problem:
        return await _runtime_problem(state, "EvalJob", visit, problem)
    spec: EvalJobSpec = policy_gate.with_defaults(resolution.spec, visit.policies)
    source = resolve_eval_model(state, namespace, spec)
    waiting = visit.in_the_way
    held = None
    if source.ready and job is None and not waiting and not old.get("jobName"):
        held = policy_gate.hold(state, "EvalJob", key, spec.resources.gpus, visit.policies)
    if source.ready and job is None and not waiting and not held:
        try:
            job, waiting = await _create_evaluation_run(state, body, spec, source, resolution)
        except ChildRejected as rejection:
            return await _report_rejection(state, "EvalJob", visit, rejection)
        if key not in state.evaljobs:
            return None  # deleted while we looked
    if job is not None:
        await _hand_over(state, job, [("ConfigMap", config_map_name(name))])
    if waiting:
        run = o.RunObservation(o.ABSENT, own.WAITING_FOR_PREVIOUS_RUN, waiting)
    elif held:
        run = o.RunObservation(o.ABSENT, held.reason, held.message,
                               recheck_after=held.recheck_after)
    else:
        run = o.observe_run(job, state.pods_of_job(job),
                            queue=builders.queue_of(spec, state.settings))
    applied = g.carries(job, spec.to_wire(), g.EVAL_APPLIED_LATER)
    status = eval_status(generation=g.observed_generation(generation, old, applied), old=old,
                         waiting=source.waiting, model_failed=source.failed,
                         model_failed_reason=source.failed_reason, run=run,
                         thresholds=spec.thresholds, now=now, job_name=job_name,
                         task=source.task)
    # As for training: pods of earlier attempts may be gone, so the total never goes down.
    status["gpuSeconds"] = round(max(run.pod_seconds * spec.resources.gpus,
                                     old.get("gpuSeconds") or 0), 1)
    if resolution.record:
        status["runtime"] = resolution.record
    if status.get("results"):
        state.metrics.record_eval_results(namespace, name, status["results"])
    _record_outcome(state, "EvalJob", namespace, old, status)
    await write_status(state, "EvalJob", body, old, status)
    policy_gate.account(state, namespace, visit.policies, old, status)
    return run.recheck_after


class EvalSource:
    """The model an EvalJob scores, once known: directly by URI or from a FinetuneJob."""

    def __init__(self, *, task: str | None = None, model: EvalModelConfig | None = None,
                 baseline: EvalModelConfig | None = None, secrets: list | None = None,
                 waiting: str | None = None, failed: str | None = None,
                 failed_reason: str = c.MODEL_JOB_FAILED,
                 encoder: EvalModelConfig | None = None,
                 training: BaselineTraining | None = None) -> None:
        self.task, self.model, self.baseline = task, model, baseline
        # The base encoder (probe, zero-shot) and the training data (cheap baselines, leakage).
        self.encoder, self.training = encoder, training
        self.secrets = secrets or []
        self.waiting, self.failed, self.failed_reason = waiting, failed, failed_reason

    @property
    def ready(self) -> bool:
        return self.model is not None


def resolve_eval_model(state: OperatorState, namespace: str, spec: EvalJobSpec) -> EvalSource:
    secrets = [s for s in (spec.dataset.secret_ref, spec.model.secret_ref,
                           spec.baseline.secret_ref if spec.baseline else None,
                           spec.baseline_training.secret_ref if spec.baseline_training else None,
                           spec.output.secret_ref if spec.output else None,
                           spec.benchmark_data.secret_ref if spec.benchmark_data else None,
                           *(b.secret_ref for b in spec.benchmarks or ()),
                           builders.tracking_secret(spec.tracking)) if s]
    if spec.model.uri:
        baseline = EvalModelConfig(uri=spec.baseline.uri) if spec.baseline else None
        return EvalSource(task=spec.model.task or "causal-lm",
                          model=EvalModelConfig(uri=spec.model.uri), baseline=baseline,
                          secrets=secrets, encoder=baseline)
    ref = spec.model.finetune_job_ref.name
    finetune = state.finetunejobs.get((namespace, ref))
    if finetune is None:
        return EvalSource(waiting=f"waiting for FinetuneJob {ref}, which does not exist yet")
    status = state.current_status("FinetuneJob", (namespace, ref))
    if status.get("phase") == "Failed":
        reason = (status.get("failure") or {}).get("reason", "Failed")
        return EvalSource(failed=f"FinetuneJob {ref} failed ({reason}); there is no model to score")
    result = status.get("result") or {}
    if status.get("phase") != "Succeeded" or not (result.get("modelUri") or result.get("adapterUri")):
        return EvalSource(waiting=f"waiting for FinetuneJob {ref} to succeed")
    try:
        finetune_spec = FinetuneJobSpec.model_validate(finetune["spec"])
    except ValidationError:
        return EvalSource(failed=f"FinetuneJob {ref} has an invalid spec")
    base = finetune_spec.model.uri
    field = "modelUri" if result.get("modelUri") else "adapterUri"
    uri = result[field]
    try:
        model = (EvalModelConfig(uri=uri) if field == "modelUri"
                 else EvalModelConfig(uri=uri, base_uri=base))
        problem = _scheme_problem(str(uri), state.settings.allowed_uri_schemes)
    except ValidationError as error:
        problem = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
    if problem:
        # The trainer reported it and nothing checked it since: no retry can change it.
        return EvalSource(failed_reason=c.INVALID_MODEL_URI, failed=redact(
            f"FinetuneJob {ref} reported status.result.{field} {str(uri)[:512]!r}, which is "
            f"not a usable model URI: {problem}"))
    wants_base = (spec.compare_baseline or bool(spec.benchmarks)
                  or bool({"chance", "base"} & set(spec.baselines or ())))
    baseline = (EvalModelConfig(uri=spec.baseline.uri) if spec.baseline
                else EvalModelConfig(uri=base) if wants_base else None)
    secrets += [s for s in (finetune_spec.model.secret_ref, finetune_spec.output.secret_ref,
                            finetune_spec.dataset.secret_ref) if s]
    dataset = finetune_spec.dataset
    training = BaselineTraining(uri=dataset.uri, format=dataset.format,
                                fields=dict(dataset.fields or {}))
    return EvalSource(task=finetune_spec.model.task, model=model, baseline=baseline,
                      secrets=secrets, encoder=EvalModelConfig(uri=base), training=training)


async def _create_evaluation_run(state: OperatorState, body: dict[str, Any], spec: EvalJobSpec,
                                 source: EvalSource, resolution: Resolution) -> Created:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if not await _still_exists(state, "EvalJob", body):
        return None, None
    config = eval_config_for(name, namespace, spec, model=source.model, task=source.task,
                             baseline=source.baseline, encoder=source.encoder,
                             training=source.training,
                             from_finetune_job=spec.model.finetune_job_ref is not None)
    uris = [source.model.uri, source.model.base_uri, spec.dataset.uri, config.output_uri,
            source.baseline.uri if source.baseline else None,
            config.encoder.uri if config.encoder else None,
            config.baseline_training.uri if config.baseline_training else None,
            config.benchmark_data.uri if config.benchmark_data else None,
            *(b.uri for b in config.benchmarks)]
    return await _create_children(
        state, "EvalJob", body, [builders.config_map("EvalJob", body, config)],
        builders.evaluation_job(body, config, spec, state.settings, source.secrets,
                                [u for u in uris if u], pod=resolution.pod))


def eval_jobs_waiting_on(state: OperatorState, namespace: str, finetune_name: str) -> list[Key]:
    """EvalJobs whose spec.model.finetuneJobRef names this FinetuneJob."""
    return [
        key for key, body in state.evaljobs.items()
        if key[0] == namespace
        and ((body.get("spec") or {}).get("model") or {}).get("finetuneJobRef", {}).get("name")
        == finetune_name
    ]


# --- writing --------------------------------------------------------------------------------

async def write_status(state: OperatorState, kind: str, body: dict[str, Any],
                       old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Patch the status when something in it changed; post an Event per transition."""
    meta = body["metadata"]
    changed = forward_only(old, {k: v for k, v in new.items() if old.get(k) != v})
    if not changed:
        return False
    stored = await state.kube.patch_status(kind, meta["namespace"], meta["name"], changed,
                                           guard=forward_only)
    if stored is None:
        return False  # deleted meanwhile
    state.written[(kind, meta["namespace"], meta["name"])] = stored
    post_condition_events(body, old.get("conditions"), stored.get("conditions") or [])
    return True
