"""ttlSecondsAfterFinished: the finished Job is deleted once its TTL has passed, its pods
with it (https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/;
kubernetes pkg/controller/ttlafterfinished/ttlafterfinished_controller.go)."""

from __future__ import annotations

from datetime import UTC, datetime

from kubetune.local.ttl import deletion_options, seconds_until_expiry

from .helpers import JOBS, RestApi, condition, job_manifest, wait_until


def test_a_finished_job_is_deleted_after_its_ttl_with_its_pods(api: RestApi) -> None:
    api.create(JOBS, job_manifest("short-lived", "print('done')", ttlSecondsAfterFinished=2))
    api.create(JOBS, job_manifest("kept", "print('done')"))
    wait_until(lambda: condition(api.job("kept"), "Complete"), message="kept Complete")
    wait_until(lambda: condition(api.job("short-lived"), "Complete"), message="short-lived Complete")
    wait_until(lambda: not api.exists(f"{JOBS}/short-lived"), timeout=10,
               message="the Job to be deleted after its TTL")
    wait_until(lambda: not api.pods_of("short-lived"), message="its pods to go with it")
    assert api.exists(f"{JOBS}/kept")  # no TTL: kept until someone deletes it
    assert api.pods_of("kept")


def test_expiry_counts_from_the_finished_condition() -> None:
    job = {"metadata": {"uid": "u1"}, "spec": {"ttlSecondsAfterFinished": 30},
           "status": {"conditions": [{"type": "Complete", "status": "True",
                                      "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    at = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert seconds_until_expiry(job, at) == 20
    assert seconds_until_expiry({**job, "spec": {}}, at) is None  # no TTL
    running = {**job, "status": {"conditions": [{"type": "Complete", "status": "False"}]}}
    assert seconds_until_expiry(running, at) is None
    assert deletion_options(job) == {"propagationPolicy": "Foreground",
                                     "preconditions": {"uid": "u1"}}
