"""The evaluation recipe: load data, check leakage, score the model and every baseline,
compare with bootstrap intervals, report.

    summary = evaluate(config)     # config: a validated kubetune.api.EvalConfig

1. Read the dataset with the trainer's data layer (bad rows counted, not fatal).
2. Load the model under test (merged folder, hf:// repo, or adapter + base) and score it in
   length-sorted batches; for a classifier its label mapping fixes the label space.
3. Read the baselines' training data (the FinetuneJob's) and check the evaluation set for
   exact and near-duplicate copies of it (leakage.py).
4. Score the baselines on the same examples: the cheap ones (baselines/), then the second
   model (`chance`, `base` or the user's `model`). One model is in memory at a time.
5. Bootstrap every system on the same resamples; per metric: the model's value and 95% CI,
   the strongest baseline and the paired CI of the difference; thresholds and passed.
6. Write predictions.jsonl and report.json under output.uri; return the termination summary.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from ..errors import InvalidConfig
from . import bootstrap, compare, models
from .baselines import NOT_A_BASELINE
from .baselines.run import score_cheap_baselines
from .baselines.training import content_text, load_training
from .causal import CausalTask
from .classification import ClassificationTask
from .data import load_eval_data
from .harness import BenchmarkSuite
from .leakage import find_leaks, leakage_report
from .preference import PreferenceTask
from .report import write_report

log = logging.getLogger(__name__)

TASKS = {"sequence-classification": "classification", "causal-lm": "generation"}
MODEL_BASELINES = ("chance", "base", "model")  # scored from config.baseline
HEADLINE = {"sequence-classification": "f1", "causal-lm": "loss"}


def evaluate(config) -> dict:
    started = time.perf_counter()
    device = models.choose_device(config.gpus)
    suite = _benchmark_suite(config)
    data = load_eval_data(config.dataset, config.task)
    log.info("data: %d usable rows of %d in %s (dropped: %s)", len(data.examples),
             data.report.rows_in, config.dataset.uri, dict(data.report.dropped) or "none")
    classifier = config.task == "sequence-classification"
    if classifier:
        task = ClassificationTask(data, config.average, device)
    elif data.format == "feedback":
        task = PreferenceTask(data, config.metrics, device)
    else:
        task = CausalTask(data, config.metrics, config.generation, device)

    loaded = models.load_under_test(config.model, config.task, device)
    task.use_labels_of(loaded)
    model_scores = task.score(loaded)
    log.info("model: %s scored %d examples in %.1fs: %s", config.model.uri, task.samples,
             model_scores.seconds, _brief(model_scores.metrics))
    # Benchmarks run on the model while it is loaded: one model in memory at a time.
    model_benchmarks = suite.score(loaded) if suite else {}
    baseline_benchmarks: dict[str, dict] = {}
    # The model's note is not kept among the baselines' by name: the user's baseline is `model`.
    mapping, model_note, baseline_note = loaded.mapping, loaded.note, ""
    models.release(loaded)

    training = (load_training(config.baseline_training, config.task, mapping)
                if config.baseline_training else None)
    leakage = _check_leakage(task, data, training, classifier)

    baselines, skipped = {}, {}
    if classifier:
        baselines, skipped = score_cheap_baselines(
            config.baselines, task, training, config.encoder.uri if config.encoder else None,
            config.label_descriptions, device)
    # A config written without a baselines list still scores its second model.
    wanted = ([name for name in config.baselines if name in MODEL_BASELINES]
              or (["model"] if config.baseline is not None else []))
    if wanted and config.baseline is not None:
        second = models.load_baseline(config.baseline, config.task, device, mapping)
        name = "chance" if second.fresh_head else wanted[0]
        baselines[name] = task.score(second)
        baseline_note = second.note
        if suite:
            baseline_benchmarks[name] = suite.score(second)
        log.info("baseline %s: %s scored in %.1fs: %s", name, config.baseline.uri,
                 baselines[name].seconds, _brief(baselines[name].metrics))
        models.release(second)
    elif wanted:
        skipped[wanted[0]] = "no base model to score (baseline.uri or finetuneJobRef)"

    # The model is kept apart from `baselines`: the user's baseline.uri model is named `model`.
    samples = bootstrap.paired(task.statistic(model_scores),
                               {name: task.statistic(scores) for name, scores in baselines.items()},
                               task.samples)
    metrics_of = {name: scores.metrics for name, scores in baselines.items()}
    eligible = [name for name in baselines if name not in NOT_A_BASELINE]
    rows = compare.comparison_rows(config.metrics, model_scores.metrics, metrics_of,
                                   config.thresholds, samples, eligible)
    baseline_entries = compare.baseline_entries(metrics_of, config.metrics, samples.baselines)
    benchmark_rows = (compare.with_verdicts(suite.rows(model_benchmarks, baseline_benchmarks),
                                            config.thresholds) if suite else [])
    passed = compare.overall_passed(rows + benchmark_rows, config.thresholds)
    calibration_status, calibration_report = (task.calibration(model_scores) if classifier
                                              else (None, None))
    headline = _headline(rows, config.thresholds, config.task)
    error_analysis = task.error_analysis(model_scores)
    report_uri = None
    if config.output_uri:
        report = {
            "apiVersion": config.api_version, "kind": "EvalReport",
            "jobName": config.job_name, "namespace": config.namespace, "task": config.task,
            "model": {**config.model.model_dump(mode="json", by_alias=True, exclude_none=True),
                      "note": model_note},
            "baseline": ({**config.baseline.model_dump(mode="json", by_alias=True,
                                                       exclude_none=True),
                          "note": baseline_note}
                         if config.baseline else None),
            "dataset": data.to_json(),
            "samples": task.samples,
            "headline": headline,
            "results": rows, "passed": passed, "thresholds": _thresholds_json(config.thresholds),
            "baselines": baseline_entries,
            "baselinesSkipped": skipped,
            "baselineTraining": _training_json(training),
            "bootstrap": {"resamples": bootstrap.RESAMPLES, "seed": bootstrap.SEED,
                          "level": bootstrap.LEVEL, "paired": True},
            "metrics": {"model": model_scores.metrics, "baselines": metrics_of},
            "calibration": calibration_report,
            "leakage": leakage,
            ("preference" if isinstance(task, PreferenceTask) else TASKS[config.task]):
                task.report(model_scores, baselines),
            "timing": _timing(task.samples, model_scores, baselines, device, started),
            "benchmarks": ({"rows": benchmark_rows, "notes": suite.notes,
                            "dataUri": suite.data_uri,
                            "harness": _harness_version()} if suite else None),
        }
        extra = ({BENCHMARK_PREDICTIONS: suite.records(model_benchmarks, baseline_benchmarks)}
                 if suite else {})
        report_uri = write_report(config.output_uri, report,
                                  task.records(model_scores, baselines), extra)
    return {
        "phase": "Succeeded", "reason": "Completed",
        "message": _message(task, rows, headline, passed, config.thresholds, data, leakage,
                            skipped, benchmark_rows),
        "samples": task.samples, "headline": headline, "results": rows, "passed": passed,
        "baselines": baseline_entries or None,
        "benchmarks": benchmark_rows or None,
        "calibration": calibration_status,
        "leakage": ({"exact": leakage["exact"], "nearDuplicates": leakage["nearDuplicates"]}
                    if leakage.get("checked") else None),
        "errorAnalysis": error_analysis,
        "dropped": dict(data.report.dropped.most_common(8)) or None,
        "reportUri": report_uri,
    }


BENCHMARK_PREDICTIONS = "benchmarks.jsonl"


def _benchmark_suite(config) -> BenchmarkSuite | None:
    """spec.benchmarks, their data checked before any model is loaded."""
    if not config.benchmarks:
        return None
    if config.task != "causal-lm":
        raise InvalidConfig(f"spec.benchmarks score a causal-lm; this model is {config.task}")
    workdir = Path(tempfile.mkdtemp(prefix="benchmarks-"))
    suite = BenchmarkSuite(config.benchmarks, config.benchmark_data, config.generation, workdir)
    suite.prepare()
    return suite


def _harness_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def _check_leakage(task, data, training, classifier: bool) -> dict:
    if training is None:
        return {"checked": False, "reason": "no training data to compare with "
                                            "(baselineTraining.uri or finetuneJobRef)"}
    examples = task.labelled.examples if classifier else data.examples
    texts = [content_text(e) for e in examples]
    lines = [e.line for e in examples]
    found = find_leaks(texts, training.texts)
    if found.any:
        log.warning("leakage: %d evaluation examples are in the training data, %d more are "
                    "near-duplicates of it", len(found.exact), len(found.near))
    return leakage_report(found, texts, lines, training.texts, training.lines, training.uri)


def _training_json(training) -> dict | None:
    if training is None:
        return None
    return {"uri": training.uri, "rows": len(training.texts),
            "unknownLabels": dict(training.unknown_labels.most_common(20))}


def _thresholds_json(thresholds: dict) -> dict:
    return {name: value if isinstance(value, int | float)
            else value.model_dump(mode="json", by_alias=True, exclude_none=True)
            for name, value in thresholds.items()}


def _brief(metrics: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4f}" for name, value in metrics.items())


def _timing(samples: int, model_scores, baselines: dict, device, started: float) -> dict:
    return {
        "device": str(device),
        "seconds": round(time.perf_counter() - started, 3),
        "modelSeconds": round(model_scores.seconds, 3),
        "modelSamplesPerSecond": round(samples / model_scores.seconds, 2)
        if model_scores.seconds else None,
        "baselineSeconds": {name: round(scores.seconds, 3) for name, scores in baselines.items()},
    }


def _headline(rows: list[dict], thresholds: dict, task: str) -> str | None:
    """The metric the message leads with: the first thresholded one, else the task's own."""
    names = [row["name"] for row in rows]
    for name in (*thresholds, HEADLINE[task]):
        if name in names:
            return name
    return names[0] if names else None


def display_name(name: str, average: str | None) -> str:
    """`f1` is the key; people read which F1 it is."""
    if average and name in ("f1", "precision", "recall"):
        return f"{average}-{'F1' if name == 'f1' else name}"
    return name


def _message(task, rows: list[dict], headline: str | None, passed: bool | None,
             thresholds: dict, data, leakage: dict, skipped: dict,
             benchmark_rows: list[dict] = ()) -> str:
    """One line for the Succeeded condition, the headline metric first."""
    parts = []
    row = next((r for r in rows if r["name"] == headline), None)
    if row is not None:
        text = f"{display_name(row['name'], getattr(task, 'average', None))} {row['value']:.4f}"
        if "ciLow" in row:
            text += f" (95% CI {row['ciLow']:.4f}-{row['ciHigh']:.4f})"
        if "baseline" in row:
            text += (f" vs strongest baseline {row['baselineName']} {row['baseline']:.4f}: "
                     f"delta {row['delta']:+.4f}")
            if "deltaCiLow" in row:
                text += f" (95% CI {row['deltaCiLow']:+.4f} to {row['deltaCiHigh']:+.4f})"
        parts.append(text)
    parts.append(f"scored {task.samples} examples")
    if passed is not None:
        unmet = compare.unmet_thresholds(rows + list(benchmark_rows), thresholds)
        parts.append("all thresholds hold" if passed else "thresholds not met: " + "; ".join(unmet))
    if leakage.get("exact") or leakage.get("nearDuplicates"):
        parts.append(f"leakage: {leakage['exact']} exact and {leakage['nearDuplicates']} "
                     "near-duplicate copies of training rows; see report")
    dropped = sum(data.report.dropped.values())
    if dropped:
        reasons = ", ".join(f"{reason} {count}" for reason, count in
                            data.report.dropped.most_common())
        parts.append(f"left out {dropped} rows ({reasons}); see report")
    if skipped:
        parts.append("baselines not scored: " + ", ".join(f"{n} ({why})"
                                                          for n, why in skipped.items()))
    if benchmark_rows:
        parts.append(f"benchmarks: {len(benchmark_rows)} task metrics in status.benchmarks, "
                     "e.g. " + _benchmark_text(benchmark_rows[0]))
    parts += getattr(task, "notes", [])
    return "; ".join(parts)


def _benchmark_text(row: dict) -> str:
    text = f"{row['name']} {row['value']:.4f}"
    if "baseline" in row:
        text += f" vs {row['baselineName']} {row['baseline']:.4f}: delta {row['delta']:+.4f}"
        if "deltaCiLow" in row:
            text += f" (95% CI {row['deltaCiLow']:+.4f} to {row['deltaCiHigh']:+.4f})"
    return text
