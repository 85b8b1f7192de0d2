"""The model against its baselines and its thresholds: one row per metric (pure functions).

    {"name": "f1", "value": 0.954, "ciLow": 0.93, "ciHigh": 0.97,
     "baseline": 0.916, "baselineName": "probe", "delta": 0.038,
     "deltaCiLow": 0.012, "deltaCiHigh": 0.064, "threshold": 0.85, "passed": true}

`baseline` is the *strongest* baseline on that metric (highest, or lowest for loss and
perplexity), `chance` excluded; the intervals are 95% bootstrap intervals over examples, the
delta's paired (bootstrap.py). `delta` is always value - baseline, so for loss and perplexity
a negative delta is the improvement. What a threshold asks (a value, beating the baseline
significantly, or both) is decided in one place, `kubetune.api.metrics.gate_checks`, shared
with the operator.
"""

from __future__ import annotations

import math

import numpy as np
from kubetune.api.metrics import gate_checks, lower_is_better, threshold_value

from .bootstrap import Paired, Samples, interval

DIGITS = 6  # enough for any metric in [0, 1]; keeps the termination message short


def _number(value: float | None) -> float | None:
    """A JSON-safe number: NaN and infinities become None (the API server rejects them)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), DIGITS)


def _with_interval(entry: dict, samples: np.ndarray | None, low: str, high: str) -> None:
    bounds = interval(samples) if samples is not None else None
    if bounds is not None and all(math.isfinite(b) for b in bounds):
        entry[low], entry[high] = round(bounds[0], DIGITS), round(bounds[1], DIGITS)


def strongest(metric: str, baselines: dict[str, dict[str, float]], eligible) -> str | None:
    """The best baseline on `metric` among `eligible` names (ties: the first listed)."""
    scored = [(name, values[metric]) for name, values in baselines.items()
              if name in eligible and _number(values.get(metric)) is not None]
    if not scored:
        return None
    sign = -1 if lower_is_better(metric) else 1
    return max(scored, key=lambda item: sign * item[1])[0]


def comparison_rows(
    names: list[str],
    values: dict[str, float],
    baselines: dict[str, dict[str, float]],
    thresholds: dict,
    samples: Paired | None = None,
    eligible=None,
) -> list[dict]:
    """One row per metric in `names` that has a value, in that order; None fields are left out.

    `baselines` maps each baseline's name to its metrics; `samples` the model's and every
    baseline's bootstrap samples (apart, so that a baseline named `model` cannot stand in for
    the model); `eligible` the baseline names that may count as the strongest (default: all).
    """
    model_dist = samples.model if samples else {}
    their_dists = samples.baselines if samples else {}
    eligible = set(baselines) if eligible is None else set(eligible)
    rows = []
    for name in names:
        value = _number(values.get(name))
        if value is None:
            continue
        row: dict = {"name": name, "value": value}
        _with_interval(row, model_dist.get(name), "ciLow", "ciHigh")
        best = strongest(name, baselines, eligible)
        if best is not None:
            base = _number(baselines[best][name])
            row.update(baseline=base, baselineName=best, delta=round(value - base, DIGITS))
            theirs = their_dists.get(best, {}).get(name)
            if name in model_dist and theirs is not None:
                _with_interval(row, model_dist[name] - theirs, "deltaCiLow", "deltaCiHigh")
        if name in thresholds:
            number = threshold_value(thresholds[name])
            if number is not None:
                row["threshold"] = number
            row["passed"] = all(held for held, _ in gate_checks(name, row, thresholds[name]))
        rows.append(row)
    return rows


def with_verdicts(rows: list[dict], thresholds: dict) -> list[dict]:
    """Rows (benchmark rows, named <task>/<metric>) with threshold and passed where a
    threshold names them, by the same rule as comparison_rows."""
    for row in rows:
        if row["name"] in thresholds:
            number = threshold_value(thresholds[row["name"]])
            if number is not None:
                row["threshold"] = number
            row["passed"] = all(held for held, _ in gate_checks(row["name"], row,
                                                                thresholds[row["name"]]))
    return rows


def baseline_entries(baselines: dict[str, dict[str, float]], names: list[str],
                     distributions: dict[str, Samples] | None = None) -> list[dict]:
    """status.baselines: every baseline's metrics (those in `names`), with intervals from
    `distributions`, the baselines' samples (Paired.baselines)."""
    distributions = distributions or {}
    out = []
    for baseline, values in baselines.items():
        metrics = []
        for name in names:
            value = _number(values.get(name))
            if value is None:
                continue
            entry = {"name": name, "value": value}
            _with_interval(entry, distributions.get(baseline, {}).get(name), "ciLow", "ciHigh")
            metrics.append(entry)
        out.append({"name": baseline, "metrics": metrics})
    return out


def overall_passed(rows: list[dict], thresholds: dict) -> bool | None:
    """True when every check of every threshold holds; None when there are none.

    A threshold on a metric that could not be computed (no row) fails: "not measured" must
    not let a model through a quality gate.
    """
    if not thresholds:
        return None
    by_name = {row["name"]: row for row in rows}
    return all(held for name, threshold in thresholds.items()
               for held, _ in gate_checks(name, by_name.get(name), threshold))


def threshold_checks(rows: list[dict], thresholds: dict) -> list[tuple[bool, str]]:
    """Every check the thresholds ask for, with whether it held, for messages."""
    by_name = {row["name"]: row for row in rows}
    return [check for name, threshold in thresholds.items()
            for check in gate_checks(name, by_name.get(name), threshold)]


def unmet_thresholds(rows: list[dict], thresholds: dict) -> list[str]:
    """Human-readable reasons why `overall_passed` is False, for the message."""
    return [text for held, text in threshold_checks(rows, thresholds) if not held]
