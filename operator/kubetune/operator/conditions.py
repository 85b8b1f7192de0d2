"""Conditions: the source of truth of a job's state (Kubernetes API conventions).

Each condition has type, status, reason (always), message, lastTransitionTime (kept while the
status stays the same, so repeated reconciles do not rewrite it) and observedGeneration.
"""

from __future__ import annotations

from typing import Any

# Condition types
VALIDATED = "Validated"
RESOURCES_FIT = "ResourcesFit"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SUSPENDED = "Suspended"
PASSED = "Passed"
LEAKAGE_DETECTED = "LeakageDetected"
"""Evaluation examples copy (or nearly copy) training rows: the scores are inflated."""
OVERFITTING = "Overfitting"
"""Eval loss kept rising while train loss fell (a warning: the best weights are kept)."""
PLATEAU = "Plateau"
"""The eval metric stopped improving meaningfully (a note: more steps are unlikely to help)."""

FINETUNE_TYPES = (VALIDATED, RESOURCES_FIT, RUNNING, SUCCEEDED, FAILED, SUSPENDED)
EVAL_TYPES = (VALIDATED, RUNNING, SUCCEEDED, FAILED, PASSED)

# Reasons (api.md lists the ones that must exist)
SPEC_VALID = "SpecValid"
INVALID_SPEC = "InvalidSpec"
NOT_PERMITTED = "NotPermitted"  # a field beyond what the operator's configuration permits
FITS = "Fits"
DOES_NOT_FIT = "DoesNotFit"
UNKNOWN = "Unknown"
PENDING = "Pending"
QUEUED = "Queued"
PODS_RUNNING = "PodsRunning"
PODS_STARTING = "PodsStarting"
COMPLETED = "Completed"
IN_PROGRESS = "InProgress"
NOT_SUSPENDED = "NotSuspended"
SUSPENDED_REASON = "Suspended"
RESUMED = "Resumed"
SUSPENDING = "Suspending"
"""Suspend asked for, pods not stopped yet (Suspended=True only once they are)."""
RESTARTING = "Restarting"
"""A multi-node gang attempt failed; every rank starts again from the last checkpoint."""
WAITING_FOR_QUOTA = "WaitingForQuota"
"""Held by Kueue: the Job waits in its queue to be admitted (or admitted again)."""
WAITING_FOR_MODEL = "WaitingForModel"
MODEL_JOB_FAILED = "FinetuneJobFailed"
INVALID_MODEL_URI = "InvalidModelUri"
"""The FinetuneJob an EvalJob scores reported a model URI that kubetune's URI rules refuse."""
THRESHOLDS_MET = "ThresholdsMet"
THRESHOLDS_NOT_MET = "ThresholdsNotMet"
NO_THRESHOLDS = "NoThresholds"
OVERLAP_FOUND = "OverlapFound"
NO_OVERLAP = "NoOverlap"
NO_IMPROVEMENT = "NoImprovement"
IMPROVING = "Improving"
# Failure reasons
OOM_KILLED = "OOMKilled"
IMAGE_PULL_FAILED = "ImagePullFailed"
UNSCHEDULABLE = "Unschedulable"
INVALID_DATASET = "InvalidDataset"
DIVERGED = "Diverged"
MODEL_NOT_FOUND = "ModelNotFound"
OUTPUT_IN_USE = "OutputInUse"
DEADLINE_EXCEEDED = "DeadlineExceeded"
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
TRAINER_ERROR = "TrainerError"
SECRET_NOT_FOUND = "SecretNotFound"
PVC_NOT_FOUND = "PersistentVolumeClaimNotFound"
CHILD_REJECTED = "ChildRejected"
"""The API server refused to create a child object (HTTP 400, 404 or 422)."""
POLICY_VIOLATION = "PolicyViolation"
"""A ClusterFinetunePolicy forbids the spec (the message names the policy and the field)."""
BUDGET_EXHAUSTED = "BudgetExhausted"
"""A ClusterFinetunePolicy's gpuHourBudget is spent: the job waits, it does not fail."""
WAITING_FOR_POLICY = "WaitingForPolicy"
"""A ClusterFinetunePolicy's maxRunningJobs is reached: the job waits for one to finish."""
FORBIDDEN = "Forbidden"
"""The API server denied the operator a child create (HTTP 403): RBAC or an admission policy."""


def condition(type_: str, status: bool | None, reason: str, message: str = "") -> dict[str, Any]:
    """A condition without its bookkeeping (time, generation); `status` None means Unknown."""
    text = "Unknown" if status is None else str(bool(status))
    return {"type": type_, "status": text, "reason": reason, "message": message[:4096]}


def merge_conditions(old: list[dict[str, Any]], new: list[dict[str, Any]], *,
                     now: str, generation: int | None) -> list[dict[str, Any]]:
    """The new conditions, with lastTransitionTime carried over where status did not change."""
    previous = {c.get("type"): c for c in old or []}
    merged = []
    for cond in new:
        before = previous.get(cond["type"])
        changed = before is None or before.get("status") != cond["status"]
        merged.append({
            **cond,
            "lastTransitionTime": now if changed else before.get("lastTransitionTime", now),
            "observedGeneration": generation,
        })
    return merged


def find(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    cond = find(conditions, type_)
    return bool(cond and cond.get("status") == "True")


def transitions(old: list[dict[str, Any]] | None,
                new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions whose status or reason changed: each becomes a Kubernetes Event."""
    previous = {c.get("type"): c for c in old or []}
    return [
        c for c in new
        if (p := previous.get(c["type"])) is None
        or (p.get("status"), p.get("reason")) != (c["status"], c["reason"])
    ]
