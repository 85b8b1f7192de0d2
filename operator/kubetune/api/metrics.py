"""The evaluation metrics each task has; EvalJob `metrics` and `thresholds` must name them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import Field

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("accuracy", "precision", "recall", "f1"),
    "causal-lm": ("loss", "perplexity", "exactMatch", "tokenF1", "rougeL"),
}
ALL_METRICS = tuple(m for names in TASK_METRICS.values() for m in names)
Threshold = Annotated[float, Field(ge=-1_000_000, le=1_000_000)]
"""A metric's required value (a floor, or a ceiling for loss-like metrics)."""

LOWER_IS_BETTER = frozenset({"loss", "perplexity"})
"""Metrics where a threshold is a maximum; for every other metric it is a minimum."""


def metric_problems(
    task: str | None, metrics: Iterable[str] | None, thresholds: Iterable[str], where: str
) -> list[str]:
    """Names in `metrics` and `thresholds` that the task does not have.

    With no task (an EvalJob that takes it from a FinetuneJob) a name must belong to some task.
    """
    allowed = TASK_METRICS[task] if task else ALL_METRICS
    task_words = f"task {task}" if task else "any task"
    problems = []
    for field, names in (("metrics", metrics or ()), ("thresholds", thresholds)):
        problems += [
            f"{where}.{field}: {name!r} is not a metric of {task_words}; "
            f"must be one of {', '.join(allowed)}"
            for name in names
            if name not in allowed
        ]
    return problems


def threshold_holds(metric: str, value: float, threshold: float) -> bool:
    """A threshold is a floor, except for loss-like metrics where it is a ceiling."""
    return value <= threshold if metric in LOWER_IS_BETTER else value >= threshold
