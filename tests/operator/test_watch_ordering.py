"""Watch streams of different resources are not ordered: the Job's Complete can arrive
before its pod's terminated state (which carries the result). The operator must not write
Succeeded without the result meanwhile. (Kubernetes API concepts: "watch ... for a single
resource type"; there is no order across types.)"""

from __future__ import annotations

import json

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
