"""Just enough PromQL reading to list the metric names a query uses."""

from __future__ import annotations

import re

# The operator's metrics (operator/kubetune/operator/metrics.py exports these names).
KUBETUNE_METRICS = frozenset({
    "kubetune_jobs",
    "kubetune_jobs_created_total",
    "kubetune_jobs_succeeded_total",
    "kubetune_jobs_failed_total",
    "kubetune_job_duration_seconds",
    "kubetune_job_creation_to_start_seconds",
    "kubetune_reconcile_errors_total",
    "kubetune_spec_check_errors_total",
    "kubetune_train_loss",
    "kubetune_eval_loss",
    "kubetune_tokens_per_second",
    "kubetune_progress_ratio",
    "kubetune_eval_metric",
    "kubetune_gpu_seconds_total",
    "kubetune_cluster_finetune_policies",
    "kubetune_policy_gpu_hours_used",
    "kubetune_policy_gpu_hours_remaining",
    "kubetune_policy_waiting_jobs",
})
HISTOGRAMS = ("kubetune_job_duration_seconds", "kubetune_job_creation_to_start_seconds")
# What a query may name: the metrics, and the series Prometheus derives from histograms.
ALLOWED_SERIES = KUBETUNE_METRICS | {
    f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}

_FUNCTIONS_AND_KEYWORDS = frozenset({
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "and", "or", "unless", "offset", "rate", "irate", "increase", "delta", "idelta",
    "deriv", "absent", "absent_over_time", "histogram_quantile", "label_replace", "label_join",
    "clamp_min", "clamp_max", "round", "abs", "ceil", "floor", "time", "vector", "scalar",
    "sort", "sort_desc", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
    "last_over_time", "changes", "resets", "timestamp", "le", "inf", "nan",
})


def metric_names(query: str) -> set[str]:
    """Metric names in a PromQL query (label matchers, grouping labels, ranges, functions
    and Grafana variables are not metric names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    identifiers = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", text))
    return {name for name in identifiers if name.lower() not in _FUNCTIONS_AND_KEYWORDS}
