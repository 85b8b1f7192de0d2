"""What the operator sees of a Job and its Pods, reduced to one pure summary.

`observe_run(job, pods)` says whether the run is absent, queued, suspended, starting,
running, succeeded or failed, and why, classifying failures into the reasons users act on
(OOMKilled, ImagePullFailed, Unschedulable, InvalidDataset, ...) with a hint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from . import conditions as c
from .labels import ATTEMPT, COMPLETION_INDEX

ABSENT, QUEUED, SUSPENDING, SUSPENDED, STARTING, RUNNING, SUCCEEDED, FAILED = (
    "Absent", "Queued", "Suspending", "Suspended", "Starting", "Running", "Succeeded", "Failed")
RESTARTING = c.RESTARTING
"""A multi-node gang attempt failed; all ranks start again together from the checkpoint."""
FINAL_REASONS = (c.INVALID_DATASET, c.MODEL_NOT_FOUND, c.DEADLINE_EXCEEDED)
"""Failures that another attempt cannot cure: never a gang restart."""

HINTS = {
    c.OOM_KILLED: "lower batchSize or maxSeqLength, enable gradientCheckpointing, or use "
                  "method lora/qlora; raise resources.memory if the host ran out",
    c.IMAGE_PULL_FAILED: "check spec.image (or the operator's trainer image) and the "
                         "namespace's image pull secrets",
    c.UNSCHEDULABLE: "no node can take the pods now: lower resources.gpus, check nodeSelector "
                     "and tolerations, or wait for capacity",
    c.INVALID_DATASET: "fix the dataset (see the message for the rows and reasons) and "
                       "create the job again",
    c.MODEL_NOT_FOUND: "check spec.model.uri and, for private models, model.secretRef",
    c.DIVERGED: "lower hyperparameters.learningRate (e.g. 10x), raise warmupRatio, and check "
                "the data (labels, empty or extremely long rows)",
    c.OUTPUT_IN_USE: "choose another spec.output.uri, or set spec.output.overwrite: true to "
                     "delete the other job's checkpoints and start clean",
    c.DEADLINE_EXCEEDED: "raise activeDeadlineSeconds or train fewer steps",
    c.BACKOFF_LIMIT_EXCEEDED: "every retry failed; see the message and the pod logs",
    c.TRAINER_ERROR: "see the message and the trainer's logs (kubectl logs job/<name>-train)",
    c.SECRET_NOT_FOUND: "create the Secret named in secretRef in the job's namespace",
    c.INVALID_MODEL_URI: "the FinetuneJob's trainer reported a model URI kubetune cannot use: "
                         "check its image (spec.image) writes under spec.output.uri, then "
                         "create the EvalJob again with model.uri set to the model's location",
    c.PVC_NOT_FOUND: "create the PersistentVolumeClaim named in the pvc:// URI in the job's "
                     "namespace",
}


@dataclass(frozen=True)
class RunObservation:
    """The state of one Job and its Pods."""

    state: str
    reason: str
    message: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    attempts: int = 0
    pod_seconds: float = 0.0
    """Seconds pods have been running, summed over pods (times GPUs gives GPU-seconds)."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The rank-0 trainer's termination message (JSON), when it wrote one."""
    progress_ip: str | None = None
    """Pod IP of the rank-0 pod while it runs: where /progress is served."""
    recheck_after: float | None = None
    """Seconds after which to look again though nothing changed (a bounded wait)."""

    @property
    def hint(self) -> str:
        return HINTS.get(self.reason, "")


def observe_run(job: dict[str, Any] | None, pods: list[dict[str, Any]],
                now: datetime | None = None, *, queue: str | None = None,
                suspend_requested: bool = False) -> RunObservation:
    """Summarise a Job and its Pods (pure; `now` only for the running pods' seconds).

    `queue`: the Kueue LocalQueue when Kueue manages the Job. Kueue keeps such a Job
    suspended until it admits it, and suspends it again when it preempts it: that is
    QUEUED, not SUSPENDED. SUSPENDED means the user asked (`suspend_requested`) and the Job
    is seen suspended with no pod left; until then it is SUSPENDING.
    """
    now = now or datetime.now(UTC)
    if job is None:
        return RunObservation(ABSENT, c.PENDING, "the training Job has not been created yet")
    status = job.get("status") or {}
    spec = job.get("spec") or {}
    rank0 = _rank0_pods(pods)
    # Pods stopped by a suspend or a preemption (deleted, disrupted, or saying so in their
    # termination message) were not failed attempts: the next pod resumes their run.
    attempts = sum(1 for p in rank0 if not _interrupted(p))
    if ATTEMPT in ((job.get("metadata") or {}).get("annotations") or {}):
        # A gang Job runs one attempt: count it once it started.
        attempts = job_attempt(job) - (0 if (rank0 or status.get("startTime")) else 1)
    seconds = sum(_pod_seconds(p, now) for p in pods)
    newest = _newest(rank0)
    summary = _termination_summary(newest)
    common = {
        "start_time": status.get("startTime"), "attempts": attempts, "pod_seconds": seconds,
        "summary": summary,
    }
    job_conditions = status.get("conditions") or []
    if c.is_true(job_conditions, "Complete"):
        if newest is not None and _terminated(newest) is None and (
                newest.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            # The Job controller counts a pod as succeeded only once the pod says so, so a
            # pod still running here is an older view (watches of different resources are
            # not ordered): its terminated state, with the result, is on its way.
            return RunObservation(RUNNING, c.PODS_RUNNING, "", **common)
        return RunObservation(SUCCEEDED, c.COMPLETED, summary.get("message", ""),
                              completion_time=status.get("completionTime"), **common)
    failed = c.find(job_conditions, "Failed")
    if failed and failed.get("status") == "True":
        wait = _exit_status_wait(job, failed, pods, now)
        if wait is not None:
            # As with Complete above: a failed pod's terminated state (exit code, OOMKilled,
            # the trainer's message) is on its way, and the failure's reason and message come
            # from it. A terminal phase is final, so it is not declared without them; after
            # EXIT_STATUS_WAIT_SECONDS (a pod on a lost node) it is, with what is known.
            return RunObservation(RUNNING, c.PODS_RUNNING, (
                f"the Job failed ({failed.get('reason') or 'no reason given'}); waiting up to "
                f"{EXIT_STATUS_WAIT_SECONDS:g}s for the pod's exit status to say why"),
                recheck_after=wait, **common)
        reason, message = _failure(failed, pods, summary)
        return RunObservation(FAILED, reason, message,
                              completion_time=failed.get("lastTransitionTime"), **common)
    pods_left = bool(status.get("active")) or any(
        (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") for p in pods)
    if spec.get("suspend") and queue and not suspend_requested:
        message = f"waiting for quota in Kueue queue {queue!r}"
        if status.get("startTime") or rank0:
            message += ("; it ran before and was preempted (not a failure): it resumes from "
                        "the last checkpoint when Kueue admits it again")
        return RunObservation(QUEUED, c.WAITING_FOR_QUOTA, message, **common)
    if spec.get("suspend") and not pods_left:
        return RunObservation(SUSPENDED, c.SUSPENDED_REASON, "the Job is suspended", **common)
    if spec.get("suspend") or suspend_requested:
        return RunObservation(SUSPENDING, c.SUSPENDING,
                              "stopping the pods; the trainer saves a checkpoint on SIGTERM",
                              **common)
    problem = next((p for p in map(_pod_problem, pods) if p), None)
    if problem:
        return RunObservation(STARTING, problem[0], problem[1], **common)
    running = [p for p in rank0 if (p.get("status") or {}).get("phase") == "Running"]
    if running and status.get("active"):
        return RunObservation(RUNNING, c.PODS_RUNNING, "", progress_ip=pod_ip(running[-1]),
                              **common)
    return RunObservation(STARTING, c.PODS_STARTING, "waiting for the pods to start", **common)


EXIT_STATUS_WAIT_SECONDS = 60.0
"""How long a failed Job's pod may still look running before the failure is declared
without its exit status: the kubelet reports it within seconds, so only a pod on a lost
node takes longer."""


def _exit_status_wait(job: dict[str, Any], failed: dict[str, Any], pods: list[dict[str, Any]],
                      now: datetime) -> float | None:
    """Seconds left to wait for the exit status of the failed Job's pods, or None: every
    failed pod the Job controller counted (status.failed) is seen failed or going, no pod
    still looks running, a deadline says why by itself, or it was waited for long enough."""
    if failed.get("reason") == "DeadlineExceeded":
        return None
    seen = sum(1 for p in pods if _failed_or_going(p))
    if seen >= ((job.get("status") or {}).get("failed") or 1) or not any(
            _looks_running(p) for p in pods):
        return None
    since = parse_time(failed.get("lastTransitionTime"))
    if since is None:
        return None
    left = EXIT_STATUS_WAIT_SECONDS - (now - since).total_seconds()
    return left if left > 0 else None


def _looks_running(pod: dict[str, Any]) -> bool:
    return (_terminated(pod) is None and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def _failed_or_going(pod: dict[str, Any]) -> bool:
    terminated = _terminated(pod) or {}
    return bool((pod.get("status") or {}).get("phase") == "Failed"
                or terminated.get("exitCode") or (pod.get("metadata") or {}).get(
                    "deletionTimestamp"))


def job_attempt(job: dict[str, Any]) -> int:
    """The gang attempt a multi-node Job runs (1 when not stamped)."""
    text = ((job.get("metadata") or {}).get("annotations") or {}).get(ATTEMPT, "1")
    return int(text) if str(text).isdigit() and int(text) > 0 else 1


def gang_verdict(run: RunObservation, job: dict[str, Any], backoff_limit: int,
                 nodes: int) -> RunObservation:
    """What a failed multi-node Job means: RESTARTING while `backoff_limit` gang restarts are
    left (every rank starts again from the last checkpoint), else the final failure. Any
    other observation is returned as it is."""
    if nodes < 2 or run.state != FAILED or run.reason in FINAL_REASONS:
        return run
    attempt = job_attempt(job)
    if attempt <= backoff_limit:
        return replace(run, state=RESTARTING, reason=RESTARTING, message=(
            f"gang attempt {attempt} failed ({run.reason}: {run.message[:500]}); restarting "
            f"all {nodes} ranks together from the last checkpoint as attempt {attempt + 1} "
            f"(backoffLimit {backoff_limit})"), completion_time=None)
    return replace(run, reason=c.BACKOFF_LIMIT_EXCEEDED, message=(
        f"all {attempt} gang attempts failed (backoffLimit {backoff_limit}); the last: "
        f"{run.reason}: {run.message[:1000]}"))


def restarting(job_name: str, attempt: int, nodes: int) -> RunObservation:
    """Between two gang attempts: the failed Job is being removed with its pods."""
    return RunObservation(RESTARTING, RESTARTING, (
        f"stopping the pods of the failed attempt ({job_name}); then all {nodes} ranks start "
        f"again together from the last checkpoint as attempt {attempt}"), attempts=attempt - 1)


def job_finished(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return c.is_true(conditions, "Complete") or c.is_true(conditions, "Failed")


def pod_ip(pod: dict[str, Any]) -> str | None:
    """The pod's primary IP (IPv4 or IPv6): status.podIP, else the first of status.podIPs
    (the same address on a real API server; the trainer serves progress on all of them)."""
    status = pod.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or [] if entry.get("ip")]
    return status.get("podIP") or (ips[0] if ips else None)


def progress_url(ip: str, port: int) -> str:
    """The trainer's GET /progress URL; an IPv6 address goes in brackets (RFC 3986)."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}/progress"


def _interrupted(pod: dict[str, Any]) -> bool:
    """Whether a pod was stopped from outside (suspend, preemption, eviction)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return True
    conditions = (pod.get("status") or {}).get("conditions") or []
    if c.is_true(conditions, "DisruptionTarget"):
        return True
    return _termination_summary(pod).get("reason") == "Preempted"


def _rank0_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods of completion index 0 (all pods of a non-indexed Job), oldest first."""
    def index(pod: dict[str, Any]) -> str:
        meta = pod.get("metadata") or {}
        return (meta.get("labels") or {}).get(COMPLETION_INDEX) or (
            meta.get("annotations") or {}).get("batch.kubernetes.io/job-completion-index", "0")

    def age(pod: dict[str, Any]) -> tuple[str, str, str]:
        # creationTimestamp has one-second resolution: break ties by start, then by end
        # (a pod still running sorts after one that finished in the same second).
        terminated = _terminated(pod) or {}
        return ((pod.get("metadata") or {}).get("creationTimestamp") or "",
                (pod.get("status") or {}).get("startTime") or "",
                terminated.get("finishedAt") or "~")

    return sorted((p for p in pods if index(p) == "0"), key=age)


def _newest(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    return pods[-1] if pods else None


def _containers(pod: dict[str, Any] | None) -> list[dict[str, Any]]:
    return ((pod or {}).get("status") or {}).get("containerStatuses") or []


def _terminated(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    for status in _containers(pod):
        state = status.get("state") or {}
        last = status.get("lastState") or {}
        if state.get("terminated") or last.get("terminated"):
            return state.get("terminated") or last.get("terminated")
    return None


def _termination_summary(pod: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON the trainer wrote to its termination-message path, or {}."""
    terminated = _terminated(pod)
    text = (terminated or {}).get("message") or ""
    try:
        value = json.loads(text)
    except ValueError:
        return {"message": text[-1000:]} if text else {}
    return value if isinstance(value, dict) else {}


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time from the API, or None when absent or malformed."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _pod_seconds(pod: dict[str, Any], now: datetime) -> float:
    for status in _containers(pod):
        state = status.get("state") or {}
        span = state.get("running") or state.get("terminated")
        start = parse_time((span or {}).get("startedAt"))
        if start is None:
            continue
        end = parse_time((state.get("terminated") or {}).get("finishedAt")) or now
        return max(0.0, (end - start).total_seconds())
    return 0.0


def _pod_problem(pod: dict[str, Any]) -> tuple[str, str] | None:
    """Why a pod cannot start, when it is something the user must fix."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            message = cond.get("message", "")
            if "persistentvolumeclaim" in message.lower() and "not found" in message.lower():
                return c.PVC_NOT_FOUND, message
            if cond.get("reason") == "Unschedulable":
                return c.UNSCHEDULABLE, message
    for container in _containers(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason, message = waiting.get("reason", ""), waiting.get("message", "")
        if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
            return c.IMAGE_PULL_FAILED, message or reason
        if reason == "CreateContainerConfigError" and "secret" in message.lower():
            return c.SECRET_NOT_FOUND, message
    return None


def _failure(failed: dict[str, Any], pods: list[dict[str, Any]],
             summary: dict[str, Any]) -> tuple[str, str]:
    """The reason a failed Job failed, most specific first."""
    job_reason = failed.get("reason", "")
    if job_reason == "DeadlineExceeded":
        return c.DEADLINE_EXCEEDED, failed.get("message", "")
    terminated = [t for t in map(_terminated, pods) if t]
    trainer_reason = summary.get("reason")
    if any(t.get("reason") == "OOMKilled" for t in terminated):
        return c.OOM_KILLED, "a trainer container ran out of memory (OOMKilled)"
    if trainer_reason == c.OOM_KILLED:  # CUDA out of memory, caught by the trainer
        return c.OOM_KILLED, summary.get("message", "the GPU ran out of memory")
    if trainer_reason in (c.INVALID_DATASET, c.MODEL_NOT_FOUND, c.DIVERGED, c.OUTPUT_IN_USE):
        return trainer_reason, summary.get("message", "")
    if job_reason == "BackoffLimitExceeded":
        detail = summary.get("message") or failed.get("message", "")
        return c.BACKOFF_LIMIT_EXCEEDED, detail
    return c.TRAINER_ERROR, summary.get("message") or failed.get("message", "")
