"""The model against its baseline and its thresholds: one row per metric (pure functions).

    {"name": "f1", "value": 0.91, "baseline": 0.62, "delta": 0.29, "threshold": 0.85,
     "passed": true}

`delta` is always value - baseline, so for loss and perplexity a negative delta is the
improvement. Whether a threshold is a floor or a ceiling is decided in one place,
`kubetune.api.metrics.threshold_holds`, shared with the operator.
"""

from __future__ import annotations

import math

from kubetune.api.metrics import threshold_holds

DIGITS = 6  # enough for any metric in [0, 1]; keeps the termination message short


def _number(value: float | None) -> float | None:
    """A JSON-safe number: NaN and infinities become None (the API server rejects them)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), DIGITS)


def comparison_rows(
    names: list[str],
    values: dict[str, float],
    baseline: dict[str, float] | None,
    thresholds: dict[str, float],
) -> list[dict]:
    """One row per metric in `names` that has a value, in that order; None fields are left out."""
    rows = []
    for name in names:
        value = _number(values.get(name))
        if value is None:
            continue
        row: dict = {"name": name, "value": value}
        base = _number(baseline.get(name)) if baseline is not None else None
        if base is not None:
            row["baseline"] = base
            row["delta"] = round(value - base, DIGITS)
        if name in thresholds:
            row["threshold"] = thresholds[name]
            row["passed"] = threshold_holds(name, value, thresholds[name])
        rows.append(row)
    return rows


def overall_passed(rows: list[dict], thresholds: dict[str, float]) -> bool | None:
    """True when every threshold holds; None when there are none.

    A threshold on a metric that could not be computed (no row) fails: "not measured" must
    not let a model through a quality gate.
    """
    if not thresholds:
        return None
    by_name = {row["name"]: row for row in rows}
    return all(by_name.get(name, {}).get("passed") is True for name in thresholds)


def unmet_thresholds(rows: list[dict], thresholds: dict[str, float]) -> list[str]:
    """Human-readable reasons why `overall_passed` is False, for the message."""
    by_name = {row["name"]: row for row in rows}
    problems = []
    for name, threshold in thresholds.items():
        row = by_name.get(name)
        if row is None:
            problems.append(f"{name} was not computed")
        elif not row["passed"]:
            relation = "<=" if row["value"] > threshold else ">="
            problems.append(f"{name} {row['value']:.4g} is not {relation} {threshold:g}")
    return problems
