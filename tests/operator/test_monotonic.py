"""The status guard: phase, progress and results only move forward (issue 17's definition)."""

from __future__ import annotations

from kubetune.operator.monotonic import forward_only

RUNNING = {"phase": "Running", "attempts": 1, "gpuSeconds": 10.0,
           "progress": {"step": 50, "totalSteps": 100, "lastUpdateTime": "2026-11-30T10:00:05Z"},
           "conditions": [{"type": "Suspended", "status": "False", "reason": "NotSuspended",
                           "lastTransitionTime": "2026-11-30T10:00:00Z"}]}


def test_a_terminal_phase_is_never_left():
    done = {**RUNNING, "phase": "Succeeded", "result": {"modelUri": "s3://m"}}
    assert forward_only(done, {"phase": "Running", "progress": {"step": 60}}) == {}
    failed = {**RUNNING, "phase": "Failed", "failure": {"reason": "OOMKilled"}}
    assert forward_only(failed, {"phase": "Pending"}) == {}
    # Staying terminal and adding to it is fine.
    assert forward_only(done, {"phase": "Succeeded", "evalJobName": "e"}) == {"evalJobName": "e"}


def test_a_verdict_given_before_anything_ran_can_be_lifted():
    for reason in ("DoesNotFit", "InvalidSpec", "ChildRejected"):
        blocked = {"phase": "Failed", "failure": {"reason": reason}}
        assert forward_only(blocked, {"phase": "Pending"}) == {"phase": "Pending"}


def test_progress_step_never_goes_back_within_a_run():
    older = {"progress": {"step": 40, "totalSteps": 100, "lastUpdateTime": "2026-11-30T10:00:09Z"}}
    assert forward_only(RUNNING, older) == {}
    newer = {"progress": {"step": 51, "totalSteps": 100, "lastUpdateTime": "2026-11-30T10:00:09Z"}}
    assert forward_only(RUNNING, newer) == newer
    assert forward_only(RUNNING, {"progress": {"totalSteps": 100}}) == {}


def test_after_a_suspension_the_checkpoint_step_is_the_truth():
    resumed = [{"type": "Suspended", "status": "False", "reason": "Resumed",
                "lastTransitionTime": "2026-11-30T10:01:00Z"}]
    back = {"progress": {"step": 40, "totalSteps": 100, "lastUpdateTime": "2026-11-30T10:01:05Z"}}
    assert forward_only({**RUNNING, "conditions": resumed}, back) == back
    # ...and the same in the patch that carries the resumption itself.
    assert forward_only(RUNNING, {**back, "conditions": resumed})["progress"] == back["progress"]


def test_after_a_kueue_preemption_or_gang_restart_the_checkpoint_step_is_the_truth():
    """issue 11: neither shows as Suspended; the Running condition went False and True."""
    running_again = [*RUNNING["conditions"], {
        "type": "Running", "status": "True", "reason": "PodsRunning",
        "lastTransitionTime": "2026-11-30T10:01:00Z"}]
    back = {"progress": {"step": 40, "totalSteps": 100, "lastUpdateTime": "2026-11-30T10:01:05Z"}}
    assert forward_only({**RUNNING, "conditions": running_again}, back) == back
    still_running = [*RUNNING["conditions"], {
        "type": "Running", "status": "True", "reason": "PodsRunning",
        "lastTransitionTime": "2026-11-30T10:00:01Z"}]
    assert forward_only({**RUNNING, "conditions": still_running}, back) == {}


def test_counters_never_decrease_and_results_are_never_lost():
    patch = forward_only(RUNNING, {"attempts": 0, "gpuSeconds": 4.0})
    assert patch == {}
    assert forward_only(RUNNING, {"attempts": 2}) == {"attempts": 2}
    done = {"phase": "Succeeded", "result": {"modelUri": "s3://m", "trainLoss": 0.5}}
    assert forward_only(done, {"result": {}}) == {}
    assert forward_only(done, {"result": {"evalLoss": 0.4}}) == {
        "result": {"modelUri": "s3://m", "trainLoss": 0.5, "evalLoss": 0.4}}
    scored = {"phase": "Succeeded", "results": [{"name": "accuracy", "value": 0.9}]}
    assert forward_only(scored, {"results": [{"name": "f1", "value": 0.8}]}) == {
        "results": [{"name": "f1", "value": 0.8}, {"name": "accuracy", "value": 0.9}]}


def test_regressions_names_what_went_backwards_in_stored_statuses():
    from kubetune.operator.monotonic import regressions

    done = {"phase": "Succeeded", "attempts": 1, "gpuSeconds": 10.0, "result": {"modelUri": "s3://m"},
            "progress": {"step": 100, "lastUpdateTime": "2026-11-30T10:00:05Z"}}
    assert regressions(RUNNING, done) == []
    assert regressions(done, {**done, "phase": "Running"}) == ["phase Succeeded -> Running"]
    assert regressions(done, {**done, "progress": {"step": 90}}) == ["progress.step 100 -> 90"]
    assert regressions(done, {**done, "attempts": 0, "result": {}}) == [
        "attempts 1 -> 0", "results lost: modelUri"]
