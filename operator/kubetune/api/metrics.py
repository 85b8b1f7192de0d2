"""The evaluation metrics each task has; EvalJob `metrics` and `thresholds` must name them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, model_validator

from .base import SpecModel

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("accuracy", "precision", "recall", "f1"),
    # winRate: preference data (dataset.format feedback), the share of pairs where the model
    # finds the chosen response more likely than the rejected one.
    "causal-lm": ("loss", "perplexity", "exactMatch", "tokenF1", "rougeL", "winRate"),
}
ALL_METRICS = tuple(m for names in TASK_METRICS.values() for m in names)
Threshold = Annotated[float, Field(ge=-1_000_000, le=1_000_000)]
"""A metric's required value (a floor, or a ceiling for loss-like metrics)."""



class Gate(SpecModel):
    """A threshold written as an object: a required value, beating the strongest baseline
    significantly, or both."""

    value: Threshold | None = None
    """The metric's required value (a floor, or a ceiling for loss and perplexity)."""
    beat_baseline: bool = False
    """true: the model must beat the strongest baseline significantly on this metric, i.e. the
    95% paired-bootstrap interval of (model - baseline) excludes 0 (deltaCiLow > 0; for loss
    and perplexity deltaCiHigh < 0)."""

    @model_validator(mode="after")
    def _something_to_check(self) -> Gate:
        if self.value is None and not self.beat_baseline:
            raise ValueError("a threshold object needs value, beatBaseline: true, or both")
        return self


ThresholdSpec = Annotated[
    Threshold | Gate,
    # A number or an object cannot be a structural schema type; the API server keeps the
    # value as written and the operator validates it (Validated=False names the field).
    WithJsonSchema({
        "x-kubernetes-preserve-unknown-fields": True,
        "description": "A required value (number), or {value, beatBaseline}.",
    }),
]
"""A threshold: `0.85`, or `{value: 0.85, beatBaseline: true}`."""

LOWER_IS_BETTER = frozenset({"loss", "perplexity"})
"""Metrics where a threshold is a maximum; for every other metric it is a minimum."""
# lm-evaluation-harness metrics where lower is better (its perplexity tasks), for thresholds
# on spec.benchmarks rows named <task>/<metric>[,<filter>].
HARNESS_LOWER_IS_BETTER = frozenset({"perplexity", "word_perplexity", "byte_perplexity",
                                     "bits_per_byte"})


def lower_is_better(name: str) -> bool:
    """Whether smaller values of this metric (or benchmark row) are better."""
    if "/" in name:
        return name.rsplit("/", 1)[1].split(",", 1)[0] in HARNESS_LOWER_IS_BETTER
    return name in LOWER_IS_BETTER


def benchmark_threshold_problems(thresholds: Iterable[str], tasks: Iterable[str]
                                 ) -> list[tuple[str, str]]:
    """Threshold keys <task>/<metric> must name a task of spec.benchmarks."""
    known = set(tasks)
    return [("thresholds", f"{name!r} names no task of spec.benchmarks (have: "
                           f"{', '.join(sorted(known)) or 'none'}); a benchmark threshold is "
                           "<task>/<metric>, e.g. arc_easy/acc")
            for name in thresholds if "/" in name and name.split("/", 1)[0] not in known]


def metric_problems(
    task: str | None, metrics: Iterable[str] | None, thresholds: Iterable[str], where: str = "",
    benchmarks: bool = False,
) -> list[tuple[str, str]]:
    """(path, what must hold) for names in `metrics` and `thresholds` the task does not have;
    paths are `metrics` and `thresholds`, below `where` when given.

    With no task (an EvalJob that takes it from a FinetuneJob) a name must belong to some task.
    """
    allowed = TASK_METRICS[task] if task else ALL_METRICS
    task_words = f"task {task}" if task else "any task"
    problems = []
    for field, names in (("metrics", metrics or ()), ("thresholds", thresholds)):
        problems += [
            (f"{where}.{field}" if where else field,
             f"{name!r} is not a metric of {task_words}; must be one of {', '.join(allowed)}")
            for name in names
            # <task>/<metric>: a benchmark row (benchmark_threshold_problems checks those).
            if name not in allowed and not (field == "thresholds" and "/" in name
                                            and benchmarks)
        ]
    return problems


def threshold_holds(metric: str, value: float, threshold: float) -> bool:
    """A threshold is a floor, except for loss-like metrics where it is a ceiling."""
    return value <= threshold if lower_is_better(metric) else value >= threshold


def threshold_value(threshold: Any) -> float | None:
    """The numeric part of a threshold (None: only beatBaseline is asked)."""
    if isinstance(threshold, int | float):
        return float(threshold)
    if isinstance(threshold, Gate):
        return threshold.value
    if isinstance(threshold, Mapping):
        value = threshold.get("value")
        return float(value) if isinstance(value, int | float) else None
    return None


def wants_beat_baseline(threshold: Any) -> bool:
    if isinstance(threshold, Gate):
        return threshold.beat_baseline
    return isinstance(threshold, Mapping) and threshold.get("beatBaseline") is True


def beats_baseline(metric: str, row: Mapping[str, Any]) -> bool:
    """The paired-bootstrap interval of (model - strongest baseline) lies on the good side of 0."""
    if lower_is_better(metric):
        high = row.get("deltaCiHigh")
        return isinstance(high, int | float) and high < 0
    low = row.get("deltaCiLow")
    return isinstance(low, int | float) and low > 0


def gate_checks(metric: str, row: Mapping[str, Any] | None, threshold: Any) -> list[tuple[bool, str]]:
    """Each check a threshold asks for on one results row: (held, what held or what did not).

    A metric that was not computed fails every check: "not measured" must not let a model
    through a quality gate.
    """
    checks = []
    value = threshold_value(threshold)
    computed = row is not None and isinstance(row.get("value"), int | float)
    if value is not None:
        relation = "<=" if lower_is_better(metric) else ">="
        if not computed:
            checks.append((False, f"{metric} was not computed"))
        else:
            held = threshold_holds(metric, row["value"], value)
            checks.append((held, f"{metric} {row['value']:.4g} {'' if held else 'is not '}"
                                 f"{relation} {value:g}"))
    if wants_beat_baseline(threshold):
        if not computed:
            checks.append((False, f"{metric} was not computed"))
        elif row.get("baselineName") is None:
            checks.append((False, f"{metric}: no baseline was scored to beat"))
        else:
            low, high = row.get("deltaCiLow"), row.get("deltaCiHigh")
            interval = (f"[{low:+.4f}, {high:+.4f}]" if isinstance(low, int | float)
                        and isinstance(high, int | float) else "unknown")
            held = beats_baseline(metric, row)
            checks.append((held, f"{metric} {'beats' if held else 'does not beat'} "
                                 f"{row['baselineName']} significantly (delta 95% CI {interval})"))
    return checks
