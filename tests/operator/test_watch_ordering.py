"""Watch streams of different resources are not ordered: the Job's Complete can arrive
before its pod's terminated state (which carries the result). The operator must not write
Succeeded without the result meanwhile. (Kubernetes API concepts: "watch ... for a single
resource type"; there is no order across types.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from kubetune.operator import observe as o

JOB = {"metadata": {"name": "r-train"}, "spec": {},
       "status": {"startTime": "2026-11-30T10:00:00Z", "completionTime": "2026-11-30T10:05:00Z",
                  "succeeded": 1,
                  "conditions": [{"type": "Complete", "status": "True"}]}}


def _pod(phase: str, terminated: dict | None = None) -> dict:
    state = {"terminated": terminated} if terminated else {"running": {"startedAt": "x"}}
    return {"metadata": {"name": "r-train-0-a", "creationTimestamp": "2026-11-30T10:00:00Z",
                         "labels": {"batch.kubernetes.io/job-completion-index": "0"}},
            "status": {"phase": phase, "podIP": "127.0.0.2",
                       "containerStatuses": [{"name": "trainer", "state": state}]}}


def test_a_complete_job_whose_pod_still_looks_running_waits_for_the_pod():
    run = o.observe_run(JOB, [_pod("Running")])
    assert run.state == o.RUNNING


def test_a_complete_job_with_its_terminated_pod_succeeds_with_the_result():
    summary = {"phase": "Succeeded", "result": {"adapterUri": "s3://bucket-a/r"}}
    pod = _pod("Succeeded", {"exitCode": 0, "message": json.dumps(summary),
                             "finishedAt": "2026-11-30T10:05:00Z"})
    run = o.observe_run(JOB, [pod])
    assert run.state == o.SUCCEEDED
    assert run.summary["result"] == {"adapterUri": "s3://bucket-a/r"}


def test_a_complete_job_whose_pods_are_gone_succeeds():
    assert o.observe_run(JOB, []).state == o.SUCCEEDED


FAILED_JOB = {"metadata": {"name": "r-train"}, "spec": {},
              "status": {"startTime": "2026-11-30T10:00:00Z", "failed": 1, "conditions": [{
                  "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                  "lastTransitionTime": "2026-11-30T10:05:00Z"}]}}


def test_a_failed_job_whose_pod_still_looks_running_waits_for_the_exit_status():
    """The failure's reason and message come from the pod's terminated state; the wait is
    bounded (a pod on a lost node never reports) and asks to be looked at again."""
    at = datetime(2026, 11, 30, 10, 5, 1, tzinfo=UTC)
    run = o.observe_run(FAILED_JOB, [_pod("Running")], now=at)
    assert run.state == o.RUNNING and "waiting" in run.message
    assert run.recheck_after == o.EXIT_STATUS_WAIT_SECONDS - 1
    late = at + timedelta(seconds=o.EXIT_STATUS_WAIT_SECONDS)
    run = o.observe_run(FAILED_JOB, [_pod("Running")], now=late)
    assert (run.state, run.reason, run.recheck_after) == (o.FAILED, "BackoffLimitExceeded", None)


def test_a_failed_job_with_its_terminated_pod_fails_with_the_trainers_message():
    summary = {"phase": "Failed", "reason": "TrainerError", "message": "CUDA error"}
    pod = _pod("Failed", {"exitCode": 1, "message": json.dumps(summary),
                          "finishedAt": "2026-11-30T10:05:00Z"})
    run = o.observe_run(FAILED_JOB, [pod])
    assert (run.state, run.reason, run.message) == (o.FAILED, "BackoffLimitExceeded", "CUDA error")
    assert o.observe_run(FAILED_JOB, []).state == o.FAILED  # pods gone: nothing to wait for


def test_a_failed_job_whose_counted_failures_are_seen_does_not_wait():
    """A gang whose rank 1 died: the failed pod the Job counted is seen, so rank 0 (still
    running until the Job controller stops it) is not waited for."""
    rank1 = _pod("Failed", {"exitCode": 137, "finishedAt": "2026-11-30T10:05:00Z"})
    rank1["metadata"] = {**rank1["metadata"], "name": "r-train-1-a",
                         "labels": {"batch.kubernetes.io/job-completion-index": "1"}}
    run = o.observe_run(FAILED_JOB, [_pod("Running"), rank1],
                        now=datetime(2026, 11, 30, 10, 5, 1, tzinfo=UTC))
    assert run.state == o.FAILED


def test_a_deadline_needs_no_exit_status():
    job = {**FAILED_JOB, "status": {**FAILED_JOB["status"], "conditions": [{
        **FAILED_JOB["status"]["conditions"][0], "reason": "DeadlineExceeded"}]}}
    assert o.observe_run(job, [_pod("Running")]).reason == "DeadlineExceeded"


def test_an_evaljob_seen_before_its_finetunejob_is_woken_when_that_arrives():
    """After a restart, kopf's watches fill the caches in any order. An EvalJob reconciled
    before its (already succeeded) FinetuneJob was seen waits; seeing the FinetuneJob, whose
    status does not change, must still wake it (found by benchmarks/chaos_soak.py)."""
    import asyncio
    import copy

    from kubetune.operator.handlers import _on_job_event
    from kubetune.operator.metrics import Metrics
    from kubetune.operator.settings import Settings
    from kubetune.operator.state import OperatorState
    from kubetune.operator.status import Fit

    from .cluster import FINETUNE_JOB
    from .test_evaljob import EVAL_JOB
    from .test_reconcile_races import RecordingKube

    async def unknown(body, spec) -> Fit:
        return Fit(None, "Unknown", "")

    async def run() -> list[str]:
        kube = RecordingKube(exists=True)
        state = OperatorState(settings=Settings(), kube=kube, metrics=Metrics(),
                              check_fit=unknown)
        evaljob = copy.deepcopy(EVAL_JOB)
        evaljob["metadata"].update(uid="e-1", generation=1)
        finetune = copy.deepcopy(FINETUNE_JOB)
        finetune["metadata"].update(uid="f-1", generation=1)
        finetune["status"] = {"phase": "Succeeded", "jobName": "router-train",
                              "result": {"modelUri": "pvc://models/router/merged"}}
        await _on_job_event(state, "EvalJob", {"type": "ADDED", "object": evaljob})
        assert "create Job" not in kube.calls  # waiting for a FinetuneJob not seen yet
        await _on_job_event(state, "FinetuneJob", {"type": "ADDED", "object": finetune})
        for _ in range(50):
            if "create Job" in kube.calls:
                break
            await asyncio.sleep(0.02)
        return kube.calls

    assert "create Job" in asyncio.run(run())
