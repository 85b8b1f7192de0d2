"""The batch/v1 Job controller's decisions, as a pure function of a Job and its Pods.

`plan(job, pods, memory, now)` says which pods to create and delete and what the Job's
status must become. The caller (`executor.py`) does the API calls. What it keeps from
kube-controller-manager:

- counts: `active`, `ready`, `succeeded`, `failed`; `startTime` (reset on resume),
  `completionTime`; `completedIndexes` for Indexed Jobs;
- `completions` / `parallelism`, per index for Indexed Jobs; without `completions` the Job
  is a work queue: done when one pod succeeded and none runs;
- `backoffLimit` (a failed pod is replaced by a new one until more than that many failed),
  `podFailurePolicy` (FailJob, Ignore and Count on exit codes and pod conditions),
  `activeDeadlineSeconds`, `suspend` (pods deleted without counting as failures);
- conditions `Suspended`, `SuccessCriteriaMet` + `Complete`, `FailureTarget` + `Failed`
  with the reasons BackoffLimitExceeded, DeadlineExceeded and PodFailurePolicy.

Pods are counted once: the real controller tracks that with a finalizer on each pod; here
`JobMemory` (kept by the executor for the Job's life) remembers which pods were counted,
and which active pods disappeared without the controller deleting them (those count as
failed, as a pod deleted while it runs does in Kubernetes). There is no back-off delay
between a failure and the replacement pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .job_pods import completion_index, is_indexed

DEFAULT_BACKOFF_LIMIT = 6
TERMINAL = ("Succeeded", "Failed")


@dataclass
class JobMemory:
    """What the controller must remember about a Job between two looks at it."""

    counted: set[str] = field(default_factory=set)  # uids of finished pods already counted
    active: dict[str, int | None] = field(default_factory=dict)  # active pod uid -> index
    deleted_by_us: set[str] = field(default_factory=set)
    succeeded: int = 0
    failed: int = 0
    completed_indexes: set[int] = field(default_factory=set)
    failure: tuple[str, str] | None = None  # (reason, message) once a rule failed the Job


@dataclass
class Plan:
    create: list[int | None] = field(default_factory=list)  # indexes (None: non-indexed)
    delete: list[str] = field(default_factory=list)  # pod names
    status: dict[str, Any] = field(default_factory=dict)
    recheck_after: float | None = None  # seconds until the deadline must be checked


def plan(job: dict[str, Any], pods: list[dict[str, Any]], memory: JobMemory,
         now: datetime | None = None) -> Plan:
    now = now or datetime.now(UTC)
    spec = job.get("spec") or {}
    old_status = job.get("status") or {}
    conditions = [dict(c) for c in old_status.get("conditions") or []]
    result = Plan()

    _count_finished(pods, memory, spec)
    active = [p for p in pods if _phase(p) not in TERMINAL]
    finished_before = _is_true(conditions, "Complete") or _is_true(conditions, "Failed")

    start_time = old_status.get("startTime")
    completion_time = old_status.get("completionTime")
    suspended = bool(spec.get("suspend"))
    stamp = _timestamp(now)

    if finished_before:
        # A finished Job runs nothing, whatever happens to it afterwards.
        result.delete = [_name(p) for p in active]
    elif (failure := _failure(spec, memory, start_time, now, suspended)) is not None:
        reason, message = failure
        result.delete = [_name(p) for p in active]
        _set_condition(conditions, "FailureTarget", "True", reason, message, stamp)
        _set_condition(conditions, "Failed", "True", reason, message, stamp)
    elif _complete(job, spec, memory, active):
        result.delete = [_name(p) for p in active]
        completion_time = stamp
        _set_condition(conditions, "SuccessCriteriaMet", "True", "CompletionsReached",
                       "Reached expected number of succeeded pods", stamp)
        _set_condition(conditions, "Complete", "True", "CompletionsReached",
                       "Reached expected number of succeeded pods", stamp)
    elif suspended:
        result.delete = [_name(p) for p in active]
        _set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", stamp)
    else:
        if _find(conditions, "Suspended") and _set_condition(
                conditions, "Suspended", "False", "JobResumed", "Job resumed", stamp):
            start_time = None  # resumed: the activeDeadlineSeconds clock starts again
        start_time = start_time or stamp
        result.create = _to_create(job, spec, memory, active)
        deadline = spec.get("activeDeadlineSeconds")
        if deadline:
            elapsed = (now - _parse(start_time)).total_seconds()
            result.recheck_after = max(0.0, deadline - elapsed)

    memory.deleted_by_us.update(_uid(p) for p in active if _name(p) in result.delete)
    still_active = [p for p in active if _name(p) not in result.delete]
    status: dict[str, Any] = {
        "active": len(still_active) + len(result.create),
        "ready": sum(1 for p in still_active if _ready(p)),
        "succeeded": memory.succeeded,
        "failed": memory.failed,
        "terminating": 0,
        "conditions": conditions,
    }
    if start_time:
        status["startTime"] = start_time
    if completion_time:
        status["completionTime"] = completion_time
    if is_indexed(job):
        status["completedIndexes"] = _ranges(sorted(memory.completed_indexes))
    # The API server leaves zero counts and empty lists out of the JSON.
    result.status = {k: v for k, v in status.items()
                     if v not in (0, "", [], None) or k in ("ready", "terminating")}
    return result


def _count_finished(pods: list[dict[str, Any]], memory: JobMemory, spec: dict[str, Any]) -> None:
    present = {_uid(p) for p in pods}
    for uid in [u for u in memory.active if u not in present]:
        # Deleted while it ran: a failure, unless the controller itself deleted it.
        if uid not in memory.deleted_by_us and uid not in memory.counted:
            memory.failed += 1
            memory.counted.add(uid)
        del memory.active[uid]
    for pod in pods:
        uid, phase = _uid(pod), _phase(pod)
        if phase not in TERMINAL:
            memory.active[uid] = completion_index(pod)
            continue
        memory.active.pop(uid, None)
        if uid in memory.counted:
            continue
        memory.counted.add(uid)
        if phase == "Succeeded":
            memory.succeeded += 1
            index = completion_index(pod)
            if index is not None:
                memory.completed_indexes.add(index)
            continue
        action, rule_message = _failure_policy_action(spec, pod)
        if action == "Ignore":
            continue
        memory.failed += 1
        if action == "FailJob" and memory.failure is None:
            memory.failure = ("PodFailurePolicy", rule_message)


def _failure_policy_action(spec: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str]:
    """The action of the first podFailurePolicy rule the failed pod matches ("Count" if none)."""
    rules = (spec.get("podFailurePolicy") or {}).get("rules") or []
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    pod_conditions = (pod.get("status") or {}).get("conditions") or []
    for number, rule in enumerate(rules):
        on_codes = rule.get("onExitCodes")
        if on_codes:
            for container in statuses:
                if on_codes.get("containerName") not in (None, container.get("name")):
                    continue
                code = ((container.get("state") or {}).get("terminated") or {}).get("exitCode")
                if code is None or code == 0:
                    continue
                values = on_codes.get("values") or []
                matched = code in values if on_codes.get("operator", "In") == "In" else code not in values
                if matched:
                    message = (f"Container {container.get('name')} for pod "
                               f"{pod['metadata'].get('namespace')}/{_name(pod)} failed with exit "
                               f"code {code} matching {rule.get('action')} rule at index {number}")
                    return rule.get("action", "Count"), message
        for wanted in rule.get("onPodConditions") or []:
            if any(c.get("type") == wanted.get("type")
                   and c.get("status") == wanted.get("status", "True") for c in pod_conditions):
                message = (f"Pod {pod['metadata'].get('namespace')}/{_name(pod)} has condition "
                           f"{wanted.get('type')} matching {rule.get('action')} rule at index {number}")
                return rule.get("action", "Count"), message
    return "Count", ""


def _failure(spec: dict[str, Any], memory: JobMemory, start_time: str | None, now: datetime,
             suspended: bool) -> tuple[str, str] | None:
    if memory.failure is not None:
        return memory.failure
    if memory.failed > spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT):
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    deadline = spec.get("activeDeadlineSeconds")
    if deadline and start_time and not suspended and (
            now - _parse(start_time)).total_seconds() >= deadline:
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    return None


def _complete(job: dict[str, Any], spec: dict[str, Any], memory: JobMemory,
              active: list[dict[str, Any]]) -> bool:
    completions = spec.get("completions")
    if is_indexed(job):
        return all(i in memory.completed_indexes for i in range(completions or 1))
    if completions is None and spec.get("parallelism") is not None:
        # Work queue: one success means the work is done once the others finish.
        return memory.succeeded >= 1 and not active
    return memory.succeeded >= (completions if completions is not None else 1)


def _to_create(job: dict[str, Any], spec: dict[str, Any], memory: JobMemory,
               active: list[dict[str, Any]]) -> list[int | None]:
    parallelism = spec.get("parallelism", 1)
    completions = spec.get("completions")
    if is_indexed(job):
        running = {completion_index(p) for p in active}
        waiting = [i for i in range(completions or 1)
                   if i not in memory.completed_indexes and i not in running]
        return list(waiting[:max(0, parallelism - len(active))])
    if completions is None and spec.get("parallelism") is not None:
        wanted = parallelism if memory.succeeded == 0 else 0
    else:
        wanted = min(parallelism, (completions or 1) - memory.succeeded)
    return [None] * max(0, wanted - len(active))


def _set_condition(conditions: list[dict[str, Any]], kind: str, status: str, reason: str,
                   message: str, stamp: str) -> bool:
    """Set a condition in place; True when its status changed (or it is new)."""
    existing = _find(conditions, kind)
    if existing is not None and existing.get("status") == status:
        # Same status: keep the times, or every look at the Job would rewrite its status.
        existing.update(reason=reason, message=message)
        return False
    new = {"type": kind, "status": status, "reason": reason, "message": message,
           "lastProbeTime": stamp, "lastTransitionTime": stamp}
    if existing is None:
        conditions.append(new)
    else:
        existing.clear()
        existing.update(new)
    return True


def _find(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _is_true(conditions: list[dict[str, Any]], kind: str) -> bool:
    found = _find(conditions, kind)
    return bool(found and found.get("status") == "True")


def _ranges(indexes: list[int]) -> str:
    """Kubernetes' compressed index list: [0, 1, 2, 5] -> "0-2,5"."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _name(pod: dict[str, Any]) -> str:
    return pod["metadata"]["name"]


def _uid(pod: dict[str, Any]) -> str:
    return pod["metadata"]["uid"]


def _phase(pod: dict[str, Any]) -> str:
    return (pod.get("status") or {}).get("phase", "Pending")


def _ready(pod: dict[str, Any]) -> bool:
    return _is_true((pod.get("status") or {}).get("conditions") or [], "Ready")


def _timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
