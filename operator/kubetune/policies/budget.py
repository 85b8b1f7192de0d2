"""The rules a ValidatingAdmissionPolicy cannot express, because they depend on other jobs:
`maxRunningJobs` and `gpuHourBudget`, per namespace. A job that would break one does not fail:
it waits (reason WaitingForPolicy or BudgetExhausted) and starts when a job finishes, the
window moves on, or the policy changes. Pure: the operator passes what its caches hold.

GPU-hours are counted from the jobs' `status.gpuSeconds` (pod run time x GPUs per pod,
accounted by the operator): a job counts while it runs and until `windowDays` after it
finished. Jobs that are deleted no longer count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .rules import KIND

WAITING_FOR_POLICY = "WaitingForPolicy"
BUDGET_EXHAUSTED = "BudgetExhausted"
MAX_RECHECK_SECONDS = 300.0
"""However far off the window frees budget, look again this often (clock skew, edits)."""


@dataclass(frozen=True)
class Usage:
    """What one job of the namespace holds: running or not, GPU-seconds, when it finished."""

    key: tuple[str, str]
    """(kind, name)"""
    running: bool
    gpu_seconds: float
    finished: datetime | None
    """None while it has not finished."""


@dataclass(frozen=True)
class Hold:
    """Why a job may not start yet, and when to look again (None: on events only)."""

    reason: str
    message: str
    recheck_after: float | None


def gpu_hours_used(usages: Iterable[Usage], window_days: int, now: datetime) -> float:
    since = now - timedelta(days=window_days)
    return sum(u.gpu_seconds for u in usages
               if u.finished is None or u.finished >= since) / 3600.0


def _frees_after(usages: Iterable[Usage], window_days: int, now: datetime) -> float | None:
    """Seconds until the next finished job leaves the window (None: none will)."""
    window = timedelta(days=window_days)
    leaving = [(u.finished + window - now).total_seconds() for u in usages
               if u.finished is not None and u.gpu_seconds > 0 and u.finished + window > now]
    return max(1.0, min(leaving)) if leaving else None


def hold(job_key: tuple[str, str], namespace: str, gpus: int,
         policies: Iterable[Mapping[str, Any]], usages: Iterable[Usage],
         now: datetime) -> Hold | None:
    """The first budget rule of the applicable `policies` that keeps the job `job_key` (kind,
    name) of `namespace` from starting now; `usages` are the namespace's jobs."""
    others = [u for u in usages if u.key != job_key]
    for policy in policies:
        name = (policy.get("metadata") or {}).get("name", "")
        spec = policy.get("spec") or {}
        limit = spec.get("maxRunningJobs")
        running = sum(1 for u in others if u.running)
        if limit is not None and running >= limit:
            return Hold(WAITING_FOR_POLICY,
                        f"{KIND} {name}: {running} jobs are running in namespace {namespace}, "
                        f"at most {limit} (maxRunningJobs); this job starts when one finishes",
                        None)
        budget = spec.get("gpuHourBudget")
        if budget and gpus > 0:
            days = budget.get("windowDays", 30)
            used = gpu_hours_used(others, days, now)
            if used >= budget["hours"]:
                frees = _frees_after(others, days, now)
                return Hold(BUDGET_EXHAUSTED,
                            f"{KIND} {name}: namespace {namespace} used {used:.2f} of "
                            f"{budget['hours']:g} GPU-hours in the last {days} days "
                            "(gpuHourBudget); this job starts when usage falls below the budget",
                            min(frees, MAX_RECHECK_SECONDS) if frees else MAX_RECHECK_SECONDS)
    return None


@dataclass(frozen=True)
class BudgetReport:
    """GPU-hours of one namespace under the tightest applicable budget (for metrics)."""

    used: float
    remaining: float


def budget_report(policies: Iterable[Mapping[str, Any]], usages: Iterable[Usage],
                  now: datetime) -> BudgetReport | None:
    usages = list(usages)
    reports = []
    for policy in policies:
        budget = (policy.get("spec") or {}).get("gpuHourBudget")
        if budget:
            used = gpu_hours_used(usages, budget.get("windowDays", 30), now)
            reports.append(BudgetReport(used, max(0.0, budget["hours"] - used)))
    return min(reports, key=lambda r: r.remaining) if reports else None
