"""The evaluator's termination message: what the operator copies into EvalJob status.

    {"phase": "Succeeded" | "Failed",
     "reason": "Completed" | "InvalidDataset" | "ModelNotFound" | "InvalidConfig"
               | "EvaluatorError",
     "message": "...",
     "samples": 240,
     "headline": "f1",                  (the metric the message leads with)
     "results": [{"name", "value", "ciLow", "ciHigh", "baseline", "baselineName", "delta",
                  "deltaCiLow", "deltaCiHigh", "threshold", "passed"}],
     "passed": true | false,            (absent: no thresholds)
     "baselines": [{"name": "tfidf", "metrics": [{"name", "value", "ciLow", "ciHigh"}]}],
     "benchmarks": [{"name": "arc_easy/acc", "task", "metric", "numFewshot", "samples",
                     "value", "ciLow", "ciHigh", "baseline", "baselineName", "delta",
                     "deltaCiLow", "deltaCiHigh"}],                  (spec.benchmarks)
     "calibration": {"ece": 0.03, "brier": 0.08},           (classification)
     "leakage": {"exact": 0, "nearDuplicates": 2},         (absent: not checked)
     "errorAnalysis": {"confusion": [{"label", "predicted", "count"}],
                       "worstClasses": [{"label", "f1"}]},
     "dropped": {"unknown label": 3},   (rows left out of scoring, by reason)
     "reportUri": "s3://.../report.json"}

Absent keys mean null. Kubernetes keeps 4 KiB of a termination message; `fit` shrinks the
summary step by step (long label names and the message first, the error analysis last) so
it always arrives as valid JSON. The full analysis is in the report.
"""

from __future__ import annotations

import json

LIMIT_BYTES = 4096
# status.errorAnalysis labels may be 253 characters; ten pairs of those alone would not fit.
LABEL_CHARS = (120, 48, 24)
MESSAGE_CHARS = (1000, 300, 120)


def size(summary: dict) -> int:
    """Bytes of the summary as `kubetune_trainer.termination` writes it."""
    return len(json.dumps(summary, separators=(",", ":")).encode())


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _cut_labels(analysis: dict, chars: int, items: int) -> dict:
    return {
        "confusion": [{**pair, "label": _cut(pair["label"], chars),
                       "predicted": _cut(pair["predicted"], chars)}
                      for pair in analysis.get("confusion", [])[:items]],
        "worstClasses": [{**entry, "label": _cut(entry["label"], chars)}
                         for entry in analysis.get("worstClasses", [])[:items]],
    }


def fit(summary: dict, limit: int = LIMIT_BYTES) -> dict:
    """The summary, without None values, shrunk until its JSON is under `limit` bytes."""
    summary = {key: value for key, value in summary.items() if value is not None}
    if size(summary) < limit:
        return summary
    analysis = summary.get("errorAnalysis")
    message = str(summary.get("message", ""))
    steps = [(LABEL_CHARS[0], 10, MESSAGE_CHARS[0]), (LABEL_CHARS[1], 10, MESSAGE_CHARS[1]),
             (LABEL_CHARS[1], 5, MESSAGE_CHARS[1]), (LABEL_CHARS[2], 5, MESSAGE_CHARS[2]),
             (LABEL_CHARS[2], 3, MESSAGE_CHARS[2])]
    for label_chars, items, message_chars in steps:
        summary["message"] = _cut(message, message_chars)
        if analysis is not None:
            summary["errorAnalysis"] = _cut_labels(analysis, label_chars, items)
        if size(summary) < limit:
            return summary
    # Then: the baselines' intervals, then every baseline metric but the headline.
    if summary.get("baselines"):
        summary["baselines"] = [
            {"name": b["name"], "metrics": [{k: m[k] for k in ("name", "value")}
                                            for m in b["metrics"]]}
            for b in summary["baselines"]]
        if size(summary) < limit:
            return summary
        summary["baselines"] = [
            {"name": b["name"], "metrics": [m for m in b["metrics"]
                                            if m["name"] == summary.get("headline")]}
            for b in summary["baselines"]]
        if size(summary) < limit:
            return summary
    # Benchmark rows: first their own intervals and repeated fields (the operator derives
    # task and metric from the name); rows from the end only after the error analysis.
    if summary.get("benchmarks"):
        keep = ("name", "value", "baseline", "baselineName", "deltaCiLow", "deltaCiHigh",
                "numFewshot", "samples", "threshold", "passed")
        summary["benchmarks"] = [{k: row[k] for k in keep if k in row}
                                 for row in summary["benchmarks"]]
        if size(summary) < limit:
            return summary
    # Last resort: the status numbers matter most; the analysis is in the report.
    summary.pop("errorAnalysis", None)
    summary.pop("dropped", None)
    # Rows a threshold gates stay: the operator decides Passed from them.
    while size(summary) >= limit:
        rows = summary.get("benchmarks") or []
        free = [k for k, row in enumerate(rows) if "passed" not in row]
        if not free:
            break
        summary["benchmarks"] = rows[:free[-1]] + rows[free[-1] + 1:]
    if size(summary) >= limit:
        # What Passed is decided on stays: the value and the delta's interval.
        keep = ("name", "value", "baselineName", "deltaCiLow", "deltaCiHigh")
        summary["results"] = [{k: row[k] for k in keep if k in row}
                              for row in summary.get("results", [])]
    return summary
