"""ClusterFinetunePolicies in the operator: which apply to a job, what they forbid (the same
rules as the chart's admission policy, kubetune.policies.rules), what they fill in
(defaultQueue, the deadline) and whether a budget holds the job back (kubetune.policies.budget).

The policies and namespace labels come from the operator's watch caches; a job is judged
before its Job is created, never after: a policy tightened later does not stop running work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..api.names import eval_run_job_name, train_job_name
from ..policies import budget, rules
from . import observe as o
from . import ownership as own
from .state import OperatorState

ACTIVE_PHASES = ("Pending", "Queued", "Running")


async def namespace_labels(state: OperatorState, namespace: str) -> dict[str, str]:
    """From the watch cache; a namespace not seen yet is read once (it exists: the job is in
    it), so a selector is never judged against missing labels."""
    labels = state.namespaces.get(namespace)
    if labels is None:
        found = await state.kube.get("Namespace", "", namespace)
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
        state.namespaces[namespace] = labels
    return labels


async def applicable(state: OperatorState, namespace: str) -> list[dict[str, Any]]:
    if not state.policies:
        return []
    return rules.applicable(state.policies.values(), await namespace_labels(state, namespace))


def problems(kind: str, body: dict[str, Any], policies: list[dict[str, Any]]) -> list[str]:
    return [v.message for v in
            (violation for policy in policies for violation in rules.violations(kind, body, policy))]


def with_defaults(spec: Any, policies: list[dict[str, Any]]) -> Any:
    """The spec with the policies' defaultQueue and deadline filled in where it sets none."""
    update = {}
    if spec.queue_name is None and (queue := rules.default_queue(policies)):
        update["queue_name"] = queue
    if spec.active_deadline_seconds is None and (deadline := rules.default_deadline(policies)):
        update["active_deadline_seconds"] = deadline
    return spec.model_copy(update=update) if update else spec


def _usage(state: OperatorState, kind: str, key: tuple[str, str],
           body: dict[str, Any]) -> budget.Usage:
    status = state.current_status(kind, key)
    namespace, name = key
    job_name = train_job_name(name) if kind == "FinetuneJob" else eval_run_job_name(name)
    job = state.jobs.get((namespace, job_name))
    if job is not None and not own.belongs_to(job, [body["metadata"].get("uid", "")]):
        job = None
    if job is not None:
        running = not o.job_finished(job) and not (job.get("spec") or {}).get("suspend")
    else:
        # Admitted a moment ago, its Job not created yet (or not seen yet): it counts.
        running = (kind, *key) in state.admitted and status.get("phase") in (None, *ACTIVE_PHASES)
    finished = None
    if status.get("phase") in ("Succeeded", "Failed"):
        finished = (o.parse_time(status.get("completionTime"))
                    or o.parse_time(body["metadata"].get("creationTimestamp"))
                    or datetime.now(UTC))
    return budget.Usage((kind, name), running, float(status.get("gpuSeconds") or 0), finished)


def usages(state: OperatorState, namespace: str) -> list[budget.Usage]:
    return [_usage(state, kind, key, body)
            for kind in ("FinetuneJob", "EvalJob")
            for key, body in state.bodies(kind).items() if key[0] == namespace]


def hold(state: OperatorState, kind: str, key: tuple[str, str], gpus: int,
         policies: list[dict[str, Any]]) -> budget.Hold | None:
    """Whether a budget keeps this job from starting; when not, it is counted as running at
    once (before any await), so two jobs reconciled together cannot both take the last slot."""
    lock_key = (kind, *key)
    if not any((p.get("spec") or {}).get(f) is not None for p in policies
               for f in ("maxRunningJobs", "gpuHourBudget")):
        state.held.pop(lock_key, None)
        return None
    now = datetime.now(UTC)
    namespace = key[0]
    found = budget.hold((kind, key[1]), namespace, gpus, policies, usages(state, namespace), now)
    if found is None:
        state.held.pop(lock_key, None)
        state.admitted.add(lock_key)
    else:
        state.held[lock_key] = found.reason
    record(state, namespace, policies)
    return found


def record(state: OperatorState, namespace: str, policies: list[dict[str, Any]]) -> None:
    """The namespace's GPU-hours and waiting jobs, as metrics."""
    report = budget.budget_report(policies, usages(state, namespace), datetime.now(UTC))
    if report is not None:
        state.metrics.gpu_hours_used.labels(namespace).set(report.used)
        state.metrics.gpu_hours_remaining.labels(namespace).set(report.remaining)
    waiting: dict[str, int] = {budget.WAITING_FOR_POLICY: 0, budget.BUDGET_EXHAUSTED: 0}
    for (_, ns, _), reason in state.held.items():
        if ns == namespace:
            waiting[reason] = waiting.get(reason, 0) + 1
    for reason, count in waiting.items():
        state.metrics.policy_waiting_jobs.labels(namespace, reason).set(count)


def account(state: OperatorState, namespace: str, policies: tuple[dict[str, Any], ...],
            old: dict[str, Any], new: dict[str, Any]) -> None:
    """Keep the namespace's budget metrics current as its jobs use GPUs and finish, not only
    when a job asks to start."""
    if policies and (new.get("gpuSeconds") != old.get("gpuSeconds")
                     or new.get("phase") != old.get("phase")):
        record(state, namespace, list(policies))


def held_in(state: OperatorState, namespace: str | None = None) -> list[tuple[str, str, str]]:
    """Jobs waiting on a budget (in one namespace, or all): to be looked at again when a job
    finishes or goes, or a policy changes."""
    return [k for k in state.held if namespace is None or k[1] == namespace]
