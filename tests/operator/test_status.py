"""The pure status functions: conditions, transitions and totals that never go backwards."""

from kubetune.operator import conditions as c
from kubetune.operator import observe as o
from kubetune.operator.status import Fit, finetune_status, progress_changed, progress_from_report

UNKNOWN_FIT = Fit(None, "Unknown", "")


def status(old=None, run=None, **kw):
    return finetune_status(generation=1, old=old or {}, fit=kw.pop("fit", UNKNOWN_FIT),
                           blocked=kw.pop("blocked", False),
                           run=run or o.RunObservation(o.STARTING, c.PODS_STARTING),
                           suspend_requested=kw.pop("suspend", False), eval_job_name=None,
                           gpus_per_pod=kw.pop("gpus", 1), now=kw.pop("now", "T1"),
                           job_name="x-train")


def test_transition_time_is_kept_while_the_status_stays():
    first = status(now="T1")
    second = status(old=first, run=o.RunObservation(o.RUNNING, c.PODS_RUNNING), now="T2")
    times = {x["type"]: x["lastTransitionTime"] for x in second["conditions"]}
    assert times["Validated"] == "T1"
    assert times["Running"] == "T2"


def test_gpu_seconds_and_attempts_never_go_down_when_old_pods_are_gone():
    old = {"gpuSeconds": 500.0, "attempts": 3}
    new = status(old=old, run=o.RunObservation(o.RUNNING, c.PODS_RUNNING, attempts=1,
                                               pod_seconds=10), gpus=4)
    assert (new["gpuSeconds"], new["attempts"]) == (500.0, 3)
    grown = status(old=old, run=o.RunObservation(o.RUNNING, c.PODS_RUNNING, pod_seconds=200), gpus=4)
    assert grown["gpuSeconds"] == 800.0


def test_does_not_fit_blocks_with_what_would_fit():
    fit = Fit(False, c.DOES_NOT_FIT, "needs ~95.2 GiB; would fit: method lora (~18.1 GiB)")
    new = status(fit=fit, blocked=True, run=o.RunObservation(o.ABSENT, c.PENDING))
    assert new["phase"] == "Failed" and new["jobName"] is None
    assert new["failure"]["reason"] == "DoesNotFit"
    assert "would fit" in new["failure"]["message"]
    assert "skip-fit-check" in new["failure"]["hint"]


def test_suspended_only_once_the_job_is_seen_suspended_with_no_pods():
    """issue 11 section 3: Suspended=True from what is observed, never from spec alone."""
    running = {"metadata": {"uid": "j"}, "spec": {"suspend": False}, "status": {"active": 1}}
    pod = {"metadata": {"name": "p", "labels": {}}, "status": {"phase": "Running"}}
    asked = o.observe_run(running, [pod], suspend_requested=True)
    new = status(run=asked, suspend=True)
    assert new["phase"] != "Suspended"
    assert _cond(new, "Suspended")["status"] == "False"
    assert _cond(new, "Suspended")["reason"] == "Suspending"

    stopping = {**running, "spec": {"suspend": True}}
    assert o.observe_run(stopping, [pod], suspend_requested=True).state == o.SUSPENDING
    stopped = {**stopping, "status": {"active": 0}}
    done = status(run=o.observe_run(stopped, [], suspend_requested=True), suspend=True)
    assert done["phase"] == "Suspended" and _cond(done, "Suspended")["status"] == "True"
    # No checkpoint was ever reported: the message does not claim one.
    assert "no checkpoint was saved" in _cond(done, "Suspended")["message"]
    with_checkpoint = status(old={"checkpoint": {"uri": "pvc://m/x/checkpoints/checkpoint-40",
                                                 "step": 40}},
                             run=o.observe_run(stopped, [], suspend_requested=True), suspend=True)
    assert "checkpoint at step 40" in _cond(with_checkpoint, "Suspended")["message"]


def test_a_job_held_by_kueue_is_queued_not_suspended():
    held = {"metadata": {"uid": "j"}, "spec": {"suspend": True}, "status": {}}
    run = o.observe_run(held, [], queue="gpu-queue")
    new = status(run=run)
    assert new["phase"] == "Queued"
    assert _cond(new, "Running")["reason"] == "WaitingForQuota"
    assert "gpu-queue" in _cond(new, "Running")["message"]
    assert _cond(new, "Suspended")["status"] == "False"
    assert new["failure"] is None


def _cond(status_: dict, type_: str) -> dict:
    return next(x for x in status_["conditions"] if x["type"] == type_)


def test_progress_from_report_computes_percent_and_ignores_unknown_keys():
    progress = progress_from_report({"step": 30, "totalSteps": 120, "trainLoss": 0.123456789,
                                     "secret": "x"}, "T")
    assert progress == {"step": 30, "totalSteps": 120, "percent": 25, "trainLoss": 0.1235,
                        "lastUpdateTime": "T"}
    assert not progress_changed(progress, {**progress, "lastUpdateTime": "later"})
    assert progress_changed(progress, {**progress, "step": 31})


def test_observe_reads_the_newest_rank0_termination_message():
    pods = [
        _pod("a", "2026-01-01T00:00:00Z", '{"reason": "TrainerError", "message": "first"}'),
        _pod("b", "2026-01-01T00:05:00Z", '{"reason": "InvalidDataset", "message": "line 3"}'),
    ]
    job = {"spec": {}, "status": {"conditions": [{"type": "Failed", "status": "True",
                                                  "reason": "PodFailurePolicy"}]}}
    run = o.observe_run(job, pods)
    assert (run.state, run.reason, run.message, run.attempts) == (
        o.FAILED, "InvalidDataset", "line 3", 2)


def _pod(name, created, message):
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"batch.kubernetes.io/job-completion-index": "0"}},
            "status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {
                "exitCode": 2, "message": message}}}]}}


def test_cuda_out_of_memory_reported_by_the_trainer_is_oom_killed():
    pods = [_pod("a", "2026-01-01T00:00:00Z",
                 '{"reason": "OOMKilled", "message": "CUDA out of memory. Tried to allocate"}')]
    job = {"spec": {}, "status": {"conditions": [{"type": "Failed", "status": "True",
                                                  "reason": "BackoffLimitExceeded"}]}}
    run = o.observe_run(job, pods)
    assert (run.reason, run.message) == ("OOMKilled", "CUDA out of memory. Tried to allocate")
    assert "gradientCheckpointing" in run.hint


def test_a_diverged_run_fails_with_reason_diverged_and_the_learning_rate_hint():
    pods = [_pod("a", "2026-01-01T00:00:00Z",
                 '{"phase": "Failed", "reason": "Diverged", "message": "the train loss became '
                 'nan at step 7; lower hyperparameters.learningRate"}')]
    job = {"spec": {}, "status": {"conditions": [{"type": "Failed", "status": "True",
                                                  "reason": "PodFailurePolicy"}]}}
    run = o.observe_run(job, pods)
    assert run.reason == "Diverged" and "nan at step 7" in run.message
    assert "learningRate" in run.hint


def test_kept_step_stopped_early_and_an_overfitting_warning_reach_the_status():
    summary = {"phase": "Succeeded", "result": {
        "modelUri": "pvc://m/model", "evalLoss": 0.31, "keptStep": 40, "stoppedEarly": True,
        "warnings": [{"reason": "Overfitting", "message": "eval loss rose 3 evaluations in a "
                                                          "row (0.3100 at step 40 -> 0.3900)"}]}}
    new = status(run=o.RunObservation(o.SUCCEEDED, c.COMPLETED, summary=summary))
    assert new["result"] == {"modelUri": "pvc://m/model", "evalLoss": 0.31, "keptStep": 40,
                             "stoppedEarly": True}
    overfitting = next(x for x in new["conditions"] if x["type"] == "Overfitting")
    assert (overfitting["status"], overfitting["reason"]) == ("True", "Overfitting")
    assert "0.3100 at step 40 -> 0.3900" in overfitting["message"]
    clean = status(run=o.RunObservation(o.SUCCEEDED, c.COMPLETED, summary={
        "phase": "Succeeded", "result": {"modelUri": "pvc://m/model"}}))
    assert "Overfitting" not in {x["type"] for x in clean["conditions"]}


PLATEAU = {"metric": "evalLoss", "sinceStep": 20, "evals": 3, "value": 0.4, "best": 0.397,
           "latest": 0.397}
OVERFIT = {"reason": "Overfitting", "message": "eval loss rose 3 evaluations in a row (0.3100 "
                                               "at step 40 -> 0.3900 at step 70)"}


def test_progress_keeps_the_trainers_plateau_and_warnings_typed_and_bounded():
    progress = progress_from_report({"step": 70, "totalSteps": 100, "plateau": {
        **PLATEAU, "sinceStep": "20"}, "warnings": [OVERFIT, {"message": "no reason"}, "x"]}, "T")
    assert "plateau" not in progress  # a step that is not a number: not a plateau
    assert progress["warnings"] == [OVERFIT]
    progress = progress_from_report({"step": 70, "plateau": {**PLATEAU, "extra": 1}}, "T")
    assert progress["plateau"] == PLATEAU


def test_overfitting_and_a_plateau_are_conditions_while_the_job_runs():
    running = o.RunObservation(o.RUNNING, c.PODS_RUNNING)
    old = {"progress": {"step": 70, "warnings": [OVERFIT], "plateau": PLATEAU}}
    new = status(old=old, run=running)
    assert new["phase"] == "Running"
    overfitting = next(x for x in new["conditions"] if x["type"] == "Overfitting")
    assert (overfitting["status"], overfitting["message"]) == ("True", OVERFIT["message"])
    plateau = next(x for x in new["conditions"] if x["type"] == "Plateau")
    assert (plateau["status"], plateau["reason"]) == ("True", "NoImprovement")
    assert "since step 20" in plateau["message"] and "latest 0.397" in plateau["message"]
    # The metric improves again: the plateau clears (as a transition), overfitting stays.
    later = status(old={**new, "progress": {"step": 90, "warnings": [OVERFIT]}}, run=running)
    types = {x["type"]: (x["status"], x["reason"]) for x in later["conditions"]}
    assert types["Plateau"] == ("False", "Improving")
    assert types["Overfitting"] == ("True", "Overfitting")
    healthy = status(old={"progress": {"step": 10}}, run=running)
    assert not {"Overfitting", "Plateau"} & {x["type"] for x in healthy["conditions"]}


def test_the_plateau_the_run_ended_on_is_in_the_result():
    summary = {"phase": "Succeeded", "result": {"modelUri": "pvc://m/model", "plateau": PLATEAU}}
    new = status(old={"progress": {"step": 90}},
                 run=o.RunObservation(o.SUCCEEDED, c.COMPLETED, summary=summary))
    assert new["result"]["plateau"] == PLATEAU
    assert next(x for x in new["conditions"] if x["type"] == "Plateau")["status"] == "True"
def test_the_fast_path_the_trainer_ran_reaches_status_result_and_a_malformed_one_is_dropped():
    """status.result.fastPath: which kernels ran. A report outside the CRD schema would make
    the API server refuse every status write of the job, so it is dropped instead."""
    fast = {"attention": "flash_attention_2", "packedAttention": "varlen",
            "liger": ["fused_linear_cross_entropy", "rms_norm"], "optimizer": "adamw-fused",
            "compiled": False, "precision": "bf16", "notes": ["compile off: auto"]}
    new = status(run=o.RunObservation(o.SUCCEEDED, c.COMPLETED, summary={
        "phase": "Succeeded", "result": {"modelUri": "pvc://m/model", "fastPath": fast}}))
    assert new["result"]["fastPath"] == fast
    bad = status(run=o.RunObservation(o.SUCCEEDED, c.COMPLETED, summary={
        "phase": "Succeeded", "result": {"modelUri": "pvc://m/model",
                                         "fastPath": {**fast, "packedAttention": "sideways"}}}))
    assert bad["result"] == {"modelUri": "pvc://m/model"}


def test_dpo_reward_accuracy_and_margin_reach_progress_and_result():
    progress = progress_from_report({"step": 5, "totalSteps": 10, "trainLoss": 0.6,
                                     "rewardAccuracy": 0.7512345, "rewardMargin": 0.123456}, "T")
    assert (progress["rewardAccuracy"], progress["rewardMargin"]) == (0.7512, 0.1235)
    summary = {"phase": "Succeeded", "result": {
        "adapterUri": "pvc://m/adapter", "rewardAccuracy": 0.9, "rewardMargin": 1.5,
        "evalRewardAccuracy": 0.95}}
    new = status(run=o.RunObservation(o.SUCCEEDED, c.COMPLETED, summary=summary))
    assert new["result"] == {"adapterUri": "pvc://m/adapter", "rewardAccuracy": 0.9,
                             "rewardMargin": 1.5, "evalRewardAccuracy": 0.95}
