"""Multi-node: one failed rank restarts the whole gang as a new attempt, and
spec.backoffLimit counts those gang restarts (issue 11 section 6).

The tests play the Job controller and kubelet (as the other operator tests do); the
emulator's garbage collector removes the failed attempt's pods (the operator deletes its
Job with foreground propagation). tests/e2e has the same story with real trainer ranks.
"""

from __future__ import annotations

import copy

from kubetune.api import FinetuneJobSpec
from kubetune.operator.builders import training_job
from kubetune.operator.settings import Settings

from .cluster import FINETUNE_JOB, NAMESPACE, condition, wait_for

GANG = copy.deepcopy(FINETUNE_JOB)
GANG["spec"]["resources"] = {"gpus": 0, "nodes": 2}


def test_a_gang_job_fails_fast_and_carries_its_attempt():
    body = {**copy.deepcopy(GANG), "metadata": {**GANG["metadata"], "uid": "u"}}
    job = training_job(body, FinetuneJobSpec.model_validate(GANG["spec"]), Settings(), attempt=3)
    assert job["spec"]["backoffLimit"] == 0  # one lost rank ends the attempt
    assert job["metadata"]["annotations"]["kubetune.io/attempt"] == "3"
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert {"action": "FailJob", "onPodConditions": [
        {"type": "DisruptionTarget", "status": "True"}]} in rules
    single = training_job(body, FinetuneJobSpec.model_validate(FINETUNE_JOB["spec"]), Settings())
    assert single["spec"]["backoffLimit"] == 2
    assert "kubetune.io/attempt" not in single["metadata"]["annotations"]


def _run_gang(api) -> tuple[str, str]:
    wait_for(lambda: not api.raw_job("router-train")["metadata"].get("deletionTimestamp"))
    return (api.start_pod("router-train", index=0, suffix="r0"),
            api.start_pod("router-train", index=1, suffix="r1"))


def _lose_rank_1(api, pods: tuple[str, str]) -> str:
    """Rank 1's node dies; the Job (backoffLimit 0) fails at once."""
    uid = api.raw_job("router-train")["metadata"]["uid"]
    api.end_pod(pods[1], exit_code=137, message="")
    api.finish_job("router-train", type_="Failed", reason="BackoffLimitExceeded", succeeded=0,
                   failed=1)
    return uid


def _next_attempt_job(api, old_uid: str) -> dict:
    return wait_for(lambda: (job := api.raw_job("router-train"))["metadata"]["uid"] != old_uid
                    and job, timeout=20, what="the next attempt's Job")


def test_a_lost_rank_restarts_every_rank_as_the_next_attempt(api, operator):
    api.create(GANG)
    wait_for(lambda: api.raw_job("router-train"))
    first = _run_gang(api)
    api.wait_status("FinetuneJob", "router", lambda s: s.get("attempts") == 1)
    old_uid = _lose_rank_1(api, first)

    job = _next_attempt_job(api, old_uid)
    assert job["metadata"]["annotations"]["kubetune.io/attempt"] == "2"
    # The failed attempt's pods went with its Job: nobody is left from attempt 1.
    names = [p.metadata.name for p in api.core.list_namespaced_pod(NAMESPACE).items]
    assert not set(first) & set(names)
    status = api.status("FinetuneJob", "router")
    assert status.get("phase") != "Failed"
    events = wait_for(lambda: [e for e in api.events("router") if e["reason"] == "Restarting"])
    assert "restarting all 2 ranks" in events[0]["message"]

    second = _run_gang(api)
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("attempts") == 2
                             and s.get("phase") == "Running")
    for pod in second:
        api.end_pod(pod, exit_code=0, message={"phase": "Succeeded", "result": {
            "adapterUri": "pvc://models/router/adapter"}})
    api.finish_job("router-train", succeeded=2)
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Succeeded")
    assert status["attempts"] == 2


def test_backoff_limit_counts_gang_restarts(api, operator):
    doc = copy.deepcopy(GANG)
    doc["spec"]["backoffLimit"] = 1
    api.create(doc)
    wait_for(lambda: api.raw_job("router-train"))
    old_uid = _lose_rank_1(api, _run_gang(api))
    _next_attempt_job(api, old_uid)
    _lose_rank_1(api, _run_gang(api))
    status = api.wait_condition("FinetuneJob", "router", "Failed", "True", "BackoffLimitExceeded")
    assert "all 2 gang attempts failed" in condition({"status": status}, "Failed")["message"]
    assert status["attempts"] == 2
