"""Every Prometheus metric the operator exports, in one place.

Per-job series (loss, progress, tokens/s, eval metrics) are removed when the job is deleted,
so a long-running operator does not grow without bound.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class Metrics:
    """The operator's metrics, registered on their own registry (one per operator)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs = Gauge(
            "kubetune_jobs", "Jobs by kind (FinetuneJob, EvalJob), namespace and phase.",
            ["kind", "namespace", "phase"], registry=r)
        self.created = Counter(
            "kubetune_jobs_created_total", "Jobs whose training or evaluation Job was created.",
            ["kind", "namespace"], registry=r)
        self.succeeded = Counter(
            "kubetune_jobs_succeeded_total", "Jobs that succeeded.", ["kind", "namespace"],
            registry=r)
        self.failed = Counter(
            "kubetune_jobs_failed_total",
            "Jobs that failed, by reason (OOMKilled, InvalidDataset, DoesNotFit, ...).",
            ["kind", "namespace", "reason"], registry=r)
        self.duration = Histogram(
            "kubetune_job_duration_seconds",
            "Wall time from the Job's start to its end; outcome is Succeeded or Failed.",
            ["kind", "namespace", "outcome"], buckets=DURATION_BUCKETS, registry=r)
        self.creation_to_start = Histogram(
            "kubetune_job_creation_to_start_seconds",
            "Time from a job's creation to its Kubernetes Job being created (operator latency).",
            ["kind"], buckets=LATENCY_BUCKETS, registry=r)
        self.reconcile_errors = Counter(
            "kubetune_reconcile_errors_total", "Reconciles that raised an error, by kind.",
            ["kind"], registry=r)
        self.spec_check_errors = Counter(
            "kubetune_spec_check_errors_total",
            "Spec checks that raised instead of answering, by kind; the object is marked invalid "
            "(InvalidSpec) for that generation rather than retried.", ["kind"], registry=r)
        self.train_loss = Gauge(
            "kubetune_train_loss", "Latest training loss of a running FinetuneJob.",
            ["namespace", "name"], registry=r)
        self.eval_loss = Gauge(
            "kubetune_eval_loss", "Latest validation loss of a FinetuneJob.",
            ["namespace", "name"], registry=r)
        self.tokens_per_second = Gauge(
            "kubetune_tokens_per_second", "Training throughput (non-padding tokens per second).",
            ["namespace", "name"], registry=r)
        self.progress = Gauge(
            "kubetune_progress_ratio", "Share of training steps done (0-1).",
            ["namespace", "name"], registry=r)
        self.eval_metric = Gauge(
            "kubetune_eval_metric",
            "An EvalJob's metric; model is finetuned (the model scored) or baseline.",
            ["namespace", "name", "metric", "model"], registry=r)
        self.gpu_seconds = Counter(
            "kubetune_gpu_seconds_total", "GPU-seconds consumed by training and evaluation pods.",
            ["namespace"], registry=r)
        self.api_requests = Counter(
            "kubetune_api_requests_total",
            "Kubernetes API requests of the operator (kopf's watches aside), by verb and "
            "HTTP code; code is \"connection\" when no reply came.",
            ["verb", "code"], registry=r)
        self.api_errors = Counter(
            "kubetune_api_errors_total",
            "Kubernetes API requests of the operator that failed (HTTP 4xx/5xx or no reply), "
            "by verb and code; retried ones count once per try.",
            ["verb", "code"], registry=r)
        self.policies = Gauge(
            "kubetune_cluster_finetune_policies",
            "ClusterFinetunePolicies the operator knows (its watch cache).", registry=r)
        self.gpu_hours_used = Gauge(
            "kubetune_policy_gpu_hours_used",
            "GPU-hours a namespace used within its ClusterFinetunePolicy gpuHourBudget window "
            "(the tightest budget that applies).", ["namespace"], registry=r)
        self.gpu_hours_remaining = Gauge(
            "kubetune_policy_gpu_hours_remaining",
            "GPU-hours left to a namespace under its tightest gpuHourBudget.", ["namespace"],
            registry=r)
        self.policy_waiting_jobs = Gauge(
            "kubetune_policy_waiting_jobs",
            "Jobs held back by a ClusterFinetunePolicy, by namespace and reason "
            "(WaitingForPolicy: maxRunningJobs; BudgetExhausted: gpuHourBudget).",
            ["namespace", "reason"], registry=r)
        self._per_job = (self.train_loss, self.eval_loss, self.tokens_per_second, self.progress)

    def record_progress(self, namespace: str, name: str, progress: dict) -> None:
        for gauge, key in ((self.train_loss, "trainLoss"), (self.eval_loss, "evalLoss"),
                           (self.tokens_per_second, "tokensPerSecond")):
            if progress.get(key) is not None:
                gauge.labels(namespace, name).set(progress[key])
        if progress.get("percent") is not None:
            self.progress.labels(namespace, name).set(progress["percent"] / 100)

    def record_api_reply(self, verb: str, code: str) -> None:
        self.api_requests.labels(verb, code).inc()
        if not code.isdigit() or int(code) >= 400:
            self.api_errors.labels(verb, code).inc()

    def record_eval_results(self, namespace: str, name: str, results: list[dict]) -> None:
        for result in results:
            self.eval_metric.labels(namespace, name, result["name"], "finetuned").set(result["value"])
            if result.get("baseline") is not None:
                self.eval_metric.labels(namespace, name, result["name"], "baseline").set(
                    result["baseline"])

    def forget_job(self, kind: str, namespace: str, name: str) -> None:
        """Remove the series of a deleted job."""
        if kind == "FinetuneJob":
            for gauge in self._per_job:
                _remove(gauge, namespace, name)
        else:
            for labels in list(_label_sets(self.eval_metric)):
                if labels[:2] == (namespace, name):
                    _remove(self.eval_metric, *labels)

    def set_phase_counts(self, counts: dict[tuple[str, str, str], int]) -> None:
        """Replace the kubetune_jobs gauge with the current counts."""
        self.jobs.clear()
        for (kind, namespace, phase), count in counts.items():
            self.jobs.labels(kind, namespace, phase).set(count)


def _remove(metric, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set: nothing to remove
        metric.remove(*labels)


def _label_sets(metric) -> list[tuple[str, ...]]:
    return [tuple(s.labels[k] for k in metric._labelnames)
            for family in metric.collect() for s in family.samples]
