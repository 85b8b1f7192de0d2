"""Budgets, as pure functions: what counts in the window, who waits, when to look again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubetune.policies.budget import (
    BUDGET_EXHAUSTED,
    MAX_RECHECK_SECONDS,
    WAITING_FOR_POLICY,
    Usage,
    budget_report,
    gpu_hours_used,
    hold,
)

from .cases import policy

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
BUDGET = policy("b", gpuHourBudget={"hours": 2, "windowDays": 7})


def _used(name: str, hours: float, finished_days_ago: float | None, running: bool = False):
    finished = None if finished_days_ago is None else NOW - timedelta(days=finished_days_ago)
    return Usage(("FinetuneJob", name), running, hours * 3600, finished)


def test_jobs_count_while_running_and_until_the_window_after_they_finished():
    usages = [_used("old", 5, 8), _used("recent", 1, 6), _used("running", 0.5, None, True)]
    assert gpu_hours_used(usages, 7, NOW) == pytest.approx(1.5)
    assert gpu_hours_used(usages, 9, NOW) == pytest.approx(6.5)


def test_a_gpu_job_waits_at_the_budget_and_looks_again_when_the_oldest_usage_leaves():
    usages = [_used("a", 1.5, 6.5), _used("b", 0.5, 1)]
    held = hold(("FinetuneJob", "new"), "team-a", 1, [BUDGET], usages, NOW)
    assert held.reason == BUDGET_EXHAUSTED
    assert held.message.startswith("ClusterFinetunePolicy b: namespace team-a used 2.00 of 2 "
                                   "GPU-hours in the last 7 days (gpuHourBudget)")
    assert held.recheck_after == pytest.approx(MAX_RECHECK_SECONDS)  # a's half day is later
    soon = [_used("a", 1.5, 7 - 60 / 86400), _used("b", 0.5, 1)]  # a leaves in a minute
    assert hold(("FinetuneJob", "new"), "team-a", 1, [BUDGET], soon, NOW).recheck_after == (
        pytest.approx(60, abs=1))


def test_cpu_jobs_and_the_job_itself_do_not_wait_on_gpu_hours():
    usages = [_used("a", 3, 1), _used("new", 3, None, True)]
    assert hold(("FinetuneJob", "new"), "team-a", 0, [BUDGET], usages, NOW) is None
    assert hold(("FinetuneJob", "new"), "team-a", 1, [BUDGET], [_used("new", 3, None, True)],
                NOW) is None


def test_max_running_jobs_counts_the_others_that_run():
    limit = policy("one", maxRunningJobs=1)
    running = [_used("a", 0, None, True), _used("b", 0, 1)]
    held = hold(("EvalJob", "new"), "team-a", 0, [limit], running, NOW)
    assert held.reason == WAITING_FOR_POLICY and held.recheck_after is None
    assert hold(("EvalJob", "new"), "team-a", 0, [limit], running[1:], NOW) is None


def test_the_report_is_the_tightest_budget():
    loose = policy("loose", gpuHourBudget={"hours": 100, "windowDays": 30})
    report = budget_report([loose, BUDGET], [_used("a", 1.5, 10), _used("b", 0.5, 1)], NOW)
    assert (report.used, report.remaining) == (pytest.approx(0.5), pytest.approx(1.5))
