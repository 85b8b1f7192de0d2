"""Per-example benchmark scores -> status rows, with the evaluation's own comparison rules
(pure functions over numpy).

Each leaf task is bootstrapped over its own examples, the model and its base model on the
same resamples (bootstrap.py), and compared by `compare.comparison_rows`, so a benchmark row
reads like a status.results row:

    {"name": "arc_easy/acc", "task": "arc_easy", "metric": "acc", "numFewshot": 0,
     "samples": 100, "value": 0.61, "ciLow": 0.51, "ciHigh": 0.70, "baseline": 0.55,
     "baselineName": "base", "delta": 0.06, "deltaCiLow": 0.01, "deltaCiHigh": 0.11}

A metric's value on a resample is the task's own aggregation of the resampled per-example
scores (the mean for acc and exact_match; corpus-level ones such as bleu or perplexity
re-aggregate), so the interval is of the number the harness reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import bootstrap, compare


@dataclass
class MetricScores:
    value: float
    items: list  # per-example scores in doc order, what the aggregation takes
    aggregate: Callable[[list], float]
    is_mean: bool = False  # numpy fast path for the bootstrap


@dataclass
class TaskScores:
    task: str  # the harness's leaf task (a group's subtask, or the task itself)
    num_fewshot: int
    doc_ids: list[int]
    metrics: dict[str, MetricScores]  # lm_eval's key: "acc", "exact_match,strict-match"
    seconds: float = 0.0
    examples: list[dict] = field(default_factory=list)  # for predictions.jsonl


def statistic(scores: TaskScores) -> bootstrap.Statistic:
    """The task's metrics on a resample of its examples."""
    columns = {key: np.asarray(m.items, dtype=np.float64) for key, m in scores.metrics.items()
               if m.is_mean}

    def on(indices: np.ndarray) -> dict[str, float]:
        out = {}
        for key, metric in scores.metrics.items():
            if key in columns:
                out[key] = float(columns[key][indices].mean())
            else:
                try:
                    out[key] = float(metric.aggregate([metric.items[i] for i in indices]))
                except (ValueError, ZeroDivisionError, OverflowError):
                    out[key] = math.nan
        return out

    return on


def task_rows(model: TaskScores, baselines: dict[str, TaskScores]) -> list[dict]:
    """Rows of one leaf task: the model's value and CI, the base model's, the paired delta."""
    comparable = {name: scores for name, scores in baselines.items()
                  if scores.doc_ids == model.doc_ids}
    n = len(model.doc_ids)
    # The model apart from the baselines: the user's baseline.uri model is named `model`.
    samples = (bootstrap.paired(statistic(model),
                                {name: statistic(scores) for name, scores in comparable.items()},
                                n) if n else None)
    keys = list(model.metrics)
    rows = compare.comparison_rows(
        keys, {k: m.value for k, m in model.metrics.items()},
        {name: {k: m.value for k, m in scores.metrics.items()}
         for name, scores in comparable.items()},
        {}, samples)
    for row in rows:
        row["metric"] = row["name"]
        row["name"] = f"{model.task}/{row['metric']}"
        row.update(task=model.task, numFewshot=model.num_fewshot, samples=n)
    return rows


def benchmark_rows(model: dict[str, TaskScores],
                   baselines: dict[str, dict[str, TaskScores]]) -> list[dict]:
    """Every leaf task's rows, in the order the tasks were scored."""
    rows = []
    for task, scores in model.items():
        theirs = {name: tasks[task] for name, tasks in baselines.items() if task in tasks}
        rows += task_rows(scores, theirs)
    return rows
