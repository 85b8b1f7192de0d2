"""The PromQL reader that the dashboard and alert tests rely on finds metric names."""

from __future__ import annotations

from .promql import ALLOWED_SERIES, metric_names


def test_reader_finds_metrics_and_ignores_labels_functions_and_variables():
    query = ('histogram_quantile(0.95, sum by (le, outcome) '
             '(rate(kubetune_job_duration_seconds_bucket{kind=~"$kind", namespace="a"}[$__range])))')
    assert metric_names(query) == {"kubetune_job_duration_seconds_bucket"}


def test_reader_sees_both_sides_of_a_binary_operation():
    query = ('kubetune_eval_metric{model="finetuned"} - ignoring(model) '
             'kubetune_eval_metric{model="baseline"} / 3600 + kubetune_made_up_total')
    assert metric_names(query) == {"kubetune_eval_metric", "kubetune_made_up_total"}
    assert not metric_names(query) <= ALLOWED_SERIES
