"""The evaluation recipe: load data, score the model, score the baseline, compare, report.

    summary = evaluate(config)     # config: a validated kubetune.api.EvalConfig

1. Read the dataset with the trainer's data layer (bad rows counted, not fatal).
2. Load the model under test (merged folder, hf:// repo, or adapter + base) and score it in
   length-sorted batches; for a classifier its label mapping fixes the label space.
3. Load the baseline, if any, into the same label space and score it on the same examples.
   One model is in memory at a time.
4. Compare: value, baseline, delta per metric; thresholds and the overall passed flag.
5. Write predictions.jsonl and report.json under output.uri; return the termination summary.
"""

from __future__ import annotations

import logging
import time

from . import compare, models
from .causal import CausalTask
from .classification import ClassificationTask
from .data import load_eval_data
from .report import write_report

log = logging.getLogger(__name__)

TASKS = {"sequence-classification": "classification", "causal-lm": "generation"}


def evaluate(config) -> dict:
    started = time.perf_counter()
    device = models.choose_device(config.gpus)
    data = load_eval_data(config.dataset, config.task)
    log.info("data: %d usable rows of %d in %s (dropped: %s)", len(data.examples),
             data.report.rows_in, config.dataset.uri, dict(data.report.dropped) or "none")
    task = (ClassificationTask(data, config.average, device)
            if config.task == "sequence-classification"
            else CausalTask(data, config.metrics, config.generation, device))

    loaded = models.load_under_test(config.model, config.task, device)
    task.use_labels_of(loaded)
    model_scores = task.score(loaded)
    log.info("model: %s scored %d examples in %.1fs: %s", config.model.uri, task.samples,
             model_scores.seconds, _brief(model_scores.metrics))
    mapping, notes = loaded.mapping, {"model": loaded.note}
    models.release(loaded)

    baseline_scores = None
    if config.baseline is not None:
        baseline = models.load_baseline(config.baseline, config.task, device, mapping)
        baseline_scores = task.score(baseline)
        notes["baseline"] = baseline.note
        log.info("baseline: %s scored in %.1fs: %s", config.baseline.uri,
                 baseline_scores.seconds, _brief(baseline_scores.metrics))
        models.release(baseline)

    rows = compare.comparison_rows(config.metrics, model_scores.metrics,
                                   baseline_scores.metrics if baseline_scores else None,
                                   config.thresholds)
    passed = compare.overall_passed(rows, config.thresholds)
    error_analysis = task.error_analysis(model_scores)
    report_uri = None
    if config.output_uri:
        report = {
            "apiVersion": config.api_version, "kind": "EvalReport",
            "jobName": config.job_name, "namespace": config.namespace, "task": config.task,
            "model": {**config.model.model_dump(mode="json", by_alias=True, exclude_none=True),
                      "note": notes["model"]},
            "baseline": ({**config.baseline.model_dump(mode="json", by_alias=True,
                                                       exclude_none=True),
                          "note": notes.get("baseline", "")} if config.baseline else None),
            "dataset": data.to_json(),
            "samples": task.samples,
            "results": rows, "passed": passed, "thresholds": config.thresholds,
            "metrics": {"model": model_scores.metrics,
                        "baseline": baseline_scores.metrics if baseline_scores else None},
            TASKS[config.task]: task.report(model_scores, baseline_scores),
            "timing": _timing(task.samples, model_scores, baseline_scores, device, started),
        }
        report_uri = write_report(config.output_uri, report,
                                  task.records(model_scores, baseline_scores))
    return {
        "phase": "Succeeded", "reason": "Completed",
        "message": _message(task, rows, passed, config.thresholds, data),
        "samples": task.samples, "results": rows, "passed": passed,
        "errorAnalysis": error_analysis,
        "dropped": dict(data.report.dropped.most_common(8)) or None,
        "reportUri": report_uri,
    }


def _brief(metrics: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4f}" for name, value in metrics.items())


def _timing(samples: int, model_scores, baseline_scores, device, started: float) -> dict:
    return {
        "device": str(device),
        "seconds": round(time.perf_counter() - started, 3),
        "modelSeconds": round(model_scores.seconds, 3),
        "modelSamplesPerSecond": round(samples / model_scores.seconds, 2)
        if model_scores.seconds else None,
        "baselineSeconds": round(baseline_scores.seconds, 3) if baseline_scores else None,
    }


def _message(task, rows: list[dict], passed: bool | None, thresholds: dict, data) -> str:
    """One line for the Succeeded condition: the headline metric, thresholds, what was left out."""
    parts = [f"scored {task.samples} examples"]
    if rows:
        head = rows[0]
        text = f"{head['name']} {head['value']:.4f}"
        if "baseline" in head:
            text += f" (baseline {head['baseline']:.4f}, delta {head['delta']:+.4f})"
        parts.append(text)
    if passed is not None:
        unmet = compare.unmet_thresholds(rows, thresholds)
        parts.append("all thresholds hold" if passed else "thresholds not met: " + "; ".join(unmet))
    dropped = sum(data.report.dropped.values())
    if dropped:
        reasons = ", ".join(f"{reason} {count}" for reason, count in
                            data.report.dropped.most_common())
        parts.append(f"left out {dropped} rows ({reasons}); see report")
    parts += getattr(task, "notes", [])
    return "; ".join(parts)
