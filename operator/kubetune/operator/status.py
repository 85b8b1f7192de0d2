"""Pure functions from (spec, what was observed, previous status) to the new status.

Level-based: the whole status is recomputed from the spec and the observed children every
time, so a restarted operator (or a missed event) ends at the same status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..api.finetune import FastPathReport
from ..api.metrics import gate_checks, threshold_value
from . import conditions as c
from . import observe as o

PHASE_OF_STATE = {
    o.ABSENT: "Pending", o.QUEUED: "Queued", o.STARTING: "Pending", o.RUNNING: "Running",
    o.SUSPENDING: "Running", o.SUSPENDED: "Suspended", o.SUCCEEDED: "Succeeded",
    o.RESTARTING: "Pending",
    o.FAILED: "Failed",
}


@dataclass(frozen=True)
class Fit:
    """The fit check's verdict: fits True/False, or None when it could not be computed."""

    fits: bool | None
    reason: str
    message: str
    plan: dict[str, Any] | None = None


def invalid_status(problems: list[str], generation: int | None, old: dict[str, Any],
                   now: str, types: tuple[str, ...] = c.FINETUNE_TYPES,
                   reason: str = c.INVALID_SPEC) -> dict[str, Any]:
    """A spec that fails validation (or, with reason NotPermitted, the operator's allowlists):
    not retried for this spec, the message says what must hold."""
    message = "; ".join(problems)
    wanted = {
        c.VALIDATED: c.condition(c.VALIDATED, False, reason, message),
        c.RESOURCES_FIT: c.condition(c.RESOURCES_FIT, None, c.UNKNOWN, "spec is invalid"),
        c.RUNNING: c.condition(c.RUNNING, False, reason),
        c.SUCCEEDED: c.condition(c.SUCCEEDED, False, reason),
        c.FAILED: c.condition(c.FAILED, True, reason, message),
        c.SUSPENDED: c.condition(c.SUSPENDED, False, c.NOT_SUSPENDED),
        c.PASSED: c.condition(c.PASSED, None, reason),
    }
    return {
        "observedGeneration": generation,
        "phase": "Failed",
        "conditions": c.merge_conditions(old.get("conditions"), [wanted[t] for t in types],
                                         now=now, generation=generation),
        "failure": {"reason": reason, "message": message[:4096],
                    "hint": "fix the spec and apply it again"},
    }


def runtime_waiting_status(problems: list[str], reason: str, generation: int | None,
                           old: dict[str, Any], now: str,
                           types: tuple[str, ...] = c.FINETUNE_TYPES) -> dict[str, Any]:
    """No usable runtime yet (missing, several defaults, or one that makes the job invalid):
    Pending, not Failed: the platform team can fix the runtime, and the job then starts."""
    message = "; ".join(problems)
    wanted = {
        c.VALIDATED: c.condition(c.VALIDATED, False, reason, message),
        c.RESOURCES_FIT: c.condition(c.RESOURCES_FIT, None, c.UNKNOWN, "waiting for the runtime"),
        c.RUNNING: c.condition(c.RUNNING, False, reason, message),
        c.SUCCEEDED: c.condition(c.SUCCEEDED, False, reason),
        c.FAILED: c.condition(c.FAILED, False, reason),
        c.SUSPENDED: c.condition(c.SUSPENDED, False, c.NOT_SUSPENDED),
        c.PASSED: c.condition(c.PASSED, None, reason),
    }
    return {
        "observedGeneration": generation,
        "phase": "Pending",
        "conditions": c.merge_conditions(old.get("conditions"), [wanted[t] for t in types],
                                         now=now, generation=generation),
    }


REJECTED_FAILS = (400, 422)
"""Codes of a child create that no retry of the same spec can cure: the job fails."""

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_SECRET_PAIRS = re.compile(
    r"(?i)\b(password|passwd|token|secret|api[_-]?key|access[_-]?key|authorization)"
    r"(\s*[=:]\s*)(bearer\s+)?[^\s,;'\"}]+")


def redact(message: str) -> str:
    """A server message made safe for status and Events: credentials in URLs and
    `token=...`-style pairs are replaced (a webhook may echo parts of the object)."""
    message = _USERINFO.sub("***@", message)
    return _SECRET_PAIRS.sub(lambda m: f"{m.group(1)}{m.group(2)}***", message)


def rejected_status(*, code: int, child: str, server_message: str, generation: int | None,
                    old: dict[str, Any], now: str, retry_seconds: float,
                    types: tuple[str, ...] = c.FINETUNE_TYPES) -> dict[str, Any]:
    """The API server refused to create a child (`child`: "Job team-a/x-train").

    400 and 422: the same spec will be refused again, so the job fails for this generation
    (a changed spec is a new generation and is tried again). 403 and 404 may be cured by
    the cluster (RBAC granted, a policy changed, a namespace or CRD created): the job stays
    Pending and is retried after `retry_seconds`.
    """
    fails = code in REJECTED_FAILS
    reason = c.FORBIDDEN if code == 403 else c.CHILD_REJECTED
    message = redact(f"the API server refused to create {child} (HTTP {code}): {server_message}")
    if code == 403:
        hint = ("the operator may not create it: grant its ServiceAccount the permission (the "
                "chart's ClusterRole; with OwnerReferencesPermissionEnforcement, as on "
                "OpenShift, it also needs update on finetunejobs/finalizers and "
                "evaljobs/finalizers), or change the admission policy named in the message; "
                f"retried every {retry_seconds:g}s")
    elif code == 404:
        hint = ("the namespace or the resource type was not found; check that it exists "
                f"(and, for EvalJobs, that the CRD is installed); retried every {retry_seconds:g}s")
    else:
        hint = ("the cluster does not accept what this spec renders (see the message: an "
                "admission policy, a webhook or the API's validation); change the spec and "
                "apply it again; the same spec is not retried")
    wanted = {
        c.VALIDATED: c.condition(c.VALIDATED, True, c.SPEC_VALID),
        c.RESOURCES_FIT: c.find(old.get("conditions"), c.RESOURCES_FIT)
        or c.condition(c.RESOURCES_FIT, None, c.UNKNOWN),
        c.RUNNING: c.condition(c.RUNNING, False, reason, message),
        c.SUCCEEDED: c.condition(c.SUCCEEDED, False, reason if fails else c.IN_PROGRESS),
        c.FAILED: c.condition(c.FAILED, fails, reason if fails else c.IN_PROGRESS,
                              message if fails else ""),
        c.SUSPENDED: c.condition(c.SUSPENDED, False, c.NOT_SUSPENDED),
        c.PASSED: c.condition(c.PASSED, False if fails else None, reason),
    }
    wanted = {k: {f: v.get(f, "") for f in ("type", "status", "reason", "message")}
              for k, v in wanted.items()}
    return {
        "observedGeneration": generation,
        "phase": "Failed" if fails else "Pending",
        "conditions": c.merge_conditions(old.get("conditions"), [wanted[t] for t in types],
                                         now=now, generation=generation),
        "failure": {"reason": reason, "message": message[:4096], "hint": hint},
    }


def finetune_status(*, generation: int | None, old: dict[str, Any], fit: Fit,
                    blocked: bool, run: o.RunObservation, suspend_requested: bool, eval_job_name: str | None,
                    gpus_per_pod: int, now: str, job_name: str) -> dict[str, Any]:
    """The FinetuneJob status for a valid spec; `blocked`: the fit check stops it."""
    state = run.state
    if blocked:
        state = o.FAILED
    elif suspend_requested and state == o.ABSENT:
        state = o.SUSPENDED  # no Job yet, so no pod to stop
    was_suspended = c.is_true(old.get("conditions"), c.SUSPENDED)

    if blocked:
        running = c.condition(c.RUNNING, False, c.DOES_NOT_FIT)
    elif state == o.RUNNING:
        running = c.condition(c.RUNNING, True, c.PODS_RUNNING, run.message)
    else:
        running = c.condition(c.RUNNING, False, _waiting_reason(run, state), run.message)

    if state == o.SUCCEEDED:
        succeeded = c.condition(c.SUCCEEDED, True, c.COMPLETED, run.message)
    else:
        succeeded = c.condition(c.SUCCEEDED, False, _closing_reason(state, run, blocked))
    if blocked:
        failed = c.condition(c.FAILED, True, c.DOES_NOT_FIT, fit.message)
    elif state == o.FAILED:
        failed = c.condition(c.FAILED, True, run.reason, run.message)
    else:
        failed = c.condition(c.FAILED, False, _closing_reason(state, run, blocked))
    if state == o.SUSPENDED:
        suspended = c.condition(c.SUSPENDED, True, c.SUSPENDED_REASON,
                                _suspended_message(run, old.get("checkpoint")))
    elif state == o.SUSPENDING:
        suspended = c.condition(c.SUSPENDED, False, c.SUSPENDING, run.message)
    elif was_suspended:
        suspended = c.condition(c.SUSPENDED, False, c.RESUMED, "resuming from the last checkpoint")
    else:
        suspended = c.condition(c.SUSPENDED, False,
                                (c.find(old.get("conditions"), c.SUSPENDED) or {}).get(
                                    "reason", c.NOT_SUSPENDED))
    fit_condition = c.condition(c.RESOURCES_FIT, fit.fits, fit.reason, fit.message)
    new_conditions = [c.condition(c.VALIDATED, True, c.SPEC_VALID), fit_condition,
                      running, succeeded, failed, suspended]
    new_conditions += _health_conditions(state, run.summary, old)

    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": PHASE_OF_STATE[state],
        "conditions": c.merge_conditions(old.get("conditions"), new_conditions, now=now,
                                         generation=generation),
        "jobName": None if blocked else job_name,
        "attempts": max(run.attempts, old.get("attempts") or 0),
        # Pods of earlier attempts may be gone; never let the total go down.
        "gpuSeconds": round(max(run.pod_seconds * gpus_per_pod, old.get("gpuSeconds") or 0), 1),
    }
    if fit.plan:
        status["plan"] = fit.plan
    if run.start_time:
        status["startTime"] = run.start_time
    if run.completion_time:
        status["completionTime"] = run.completion_time
    if state == o.SUCCEEDED:
        status["result"] = _result(run.summary)
        status["progress"] = _final_progress(old.get("progress"), run.summary, now)
    if state == o.FAILED or (run.hint and state == o.STARTING):
        reason = c.DOES_NOT_FIT if blocked else run.reason
        hint = _fit_hint(fit) if blocked else run.hint
        status["failure"] = {"reason": reason, "message": (fit.message if blocked else run.message)[:4096],
                             "hint": hint}
    else:
        status["failure"] = None
    if eval_job_name:
        status["evalJobName"] = eval_job_name
    return status


def _suspended_message(run: o.RunObservation, checkpoint: dict[str, Any] | None) -> str:
    """What a resume will start from: only a checkpoint someone saw being saved is claimed."""
    step = run.summary.get("step")
    if run.summary.get("reason") == "Preempted" and isinstance(step, int) and step > 0:
        return (f"pods stopped; the trainer saved a checkpoint at step {step}, "
                "a resume continues from it")
    if checkpoint and checkpoint.get("uri"):
        step = checkpoint.get("step")
        at = f" at step {step}" if isinstance(step, int) else ""
        return f"pods stopped; a resume continues from the last checkpoint{at} ({checkpoint['uri']})"
    return "pods stopped; no checkpoint was saved yet, so a resume starts from the beginning"


def _waiting_reason(run: o.RunObservation, state: str) -> str:
    if state == o.SUSPENDED:
        return c.SUSPENDED_REASON
    if state in (o.SUCCEEDED, o.FAILED):
        return run.reason
    return run.reason or c.PENDING


def _closing_reason(state: str, run: o.RunObservation, blocked: bool) -> str:
    if blocked:
        return c.DOES_NOT_FIT
    if state == o.FAILED:
        return run.reason
    if state == o.SUCCEEDED:
        return c.COMPLETED
    return c.IN_PROGRESS


def _fit_hint(fit: Fit) -> str:
    return ("see the ResourcesFit message for what would fit, or set the annotation "
            "kubetune.io/skip-fit-check: \"true\" to run anyway")


_RESULT_FIELDS = ("adapterUri", "modelUri", "trainLoss", "evalLoss", "evalAccuracy", "keptStep",
                  "stoppedEarly", "fastPath", "rewardAccuracy", "rewardMargin",
                  "evalRewardAccuracy", "baseModelRevision", "servingUri")


def _warning(summary: dict[str, Any], reason: str) -> str | None:
    """The message of a warning the trainer reported (e.g. Overfitting), or None."""
    for warning in (summary.get("result") or {}).get("warnings") or []:
        if isinstance(warning, dict) and warning.get("reason") == reason:
            return str(warning.get("message", ""))[:4096]
    return None


def _result(summary: dict[str, Any]) -> dict[str, Any]:
    result = summary.get("result") or {}
    out = {k: result[k] for k in _RESULT_FIELDS if result.get(k) is not None}
    if plateau := plateau_from_report(result.get("plateau")):
        out["plateau"] = plateau
    if "fastPath" in out:
        # The trainer's report, kept only in the schema's shape: a status the API server
        # refuses would block every later status write of this job.
        try:
            out["fastPath"] = FastPathReport.model_validate(out["fastPath"]).to_wire()
        except ValidationError:
            del out["fastPath"]
    return out


def _health_conditions(state: str, summary: dict[str, Any],
                       old: dict[str, Any]) -> list[dict[str, Any]]:
    """Overfitting and Plateau, while the job runs and after: from the trainer's final
    summary once it succeeded, else from what it reported on GET /progress (the poller
    stores that in status.progress; this reconcile follows that write's watch event).
    Overfitting never clears (it happened); a plateau clears when the metric improves again."""
    progress = old.get("progress") or {}
    if state == o.SUCCEEDED:
        result = summary.get("result") or {}
        message = _warning(summary, c.OVERFITTING)
        plateau = plateau_from_report(result.get("plateau"))
    else:
        message = next((w["message"] for w in progress.get("warnings") or []
                        if w.get("reason") == c.OVERFITTING), None)
        plateau = progress.get("plateau")
    message = message or (c.find(old.get("conditions"), c.OVERFITTING) or {}).get("message")
    out = []
    if message:
        out.append(c.condition(c.OVERFITTING, True, c.OVERFITTING, message))
    if plateau:
        out.append(c.condition(c.PLATEAU, True, c.NO_IMPROVEMENT, plateau_text(plateau)))
    elif c.find(old.get("conditions"), c.PLATEAU):
        out.append(c.condition(c.PLATEAU, False, c.IMPROVING,
                               "the eval metric improved by more than 1% again"))
    return out


def plateau_text(plateau: dict[str, Any]) -> str:
    return (f"{plateau.get('metric')} has not improved by more than 1% for "
            f"{plateau.get('evals')} evaluations, since step {plateau.get('sinceStep')} "
            f"({plateau.get('value')} then, best since {plateau.get('best')}, latest "
            f"{plateau.get('latest')}); more steps of this recipe are unlikely to help")


_PLATEAU_NUMBERS = ("value", "best", "latest")


def plateau_from_report(item: Any) -> dict[str, Any] | None:
    """status.progress.plateau / result.plateau from the trainer's numbers (typed, bounded)."""
    if not isinstance(item, dict) or not isinstance(item.get("sinceStep"), int):
        return None
    out: dict[str, Any] = {"metric": str(item.get("metric", "evalLoss"))[:64],
                           "sinceStep": max(0, item["sinceStep"])}
    if isinstance(item.get("evals"), int):
        out["evals"] = max(0, item["evals"])
    for key in _PLATEAU_NUMBERS:
        if (value := _rounded(item.get(key), 6)) is not None:
            out[key] = value
    return out


def warnings_from_report(items: Any) -> list[dict[str, str]]:
    """status.progress.warnings from the trainer's: reason and message, bounded."""
    return [{"reason": str(w["reason"])[:64], "message": str(w.get("message", ""))[:1024]}
            for w in (items if isinstance(items, list) else [])[:8]
            if isinstance(w, dict) and isinstance(w.get("reason"), str)]


def _final_progress(old: dict[str, Any] | None, summary: dict[str, Any], now: str) -> dict:
    progress = dict(old or {})
    total = summary.get("totalSteps") or progress.get("totalSteps")
    step = summary.get("step") or progress.get("step") or total
    progress.update({k: v for k, v in {
        "step": step, "totalSteps": total, "percent": 100, "etaSeconds": 0,
        "trainLoss": (summary.get("result") or {}).get("trainLoss", progress.get("trainLoss")),
        "evalLoss": (summary.get("result") or {}).get("evalLoss", progress.get("evalLoss")),
    }.items() if v is not None})
    progress.setdefault("lastUpdateTime", now)
    return progress


def progress_from_report(report: dict[str, Any], now: str) -> dict[str, Any]:
    """status.progress from a trainer's GET /progress answer (unknown keys dropped)."""
    step, total = report.get("step"), report.get("totalSteps")
    progress = {
        "step": step, "totalSteps": total, "epoch": report.get("epoch"),
        "percent": int(100 * step / total) if isinstance(step, int) and total else None,
        "trainLoss": _rounded(report.get("trainLoss")), "evalLoss": _rounded(report.get("evalLoss")),
        "tokensPerSecond": _rounded(report.get("tokensPerSecond"), 1),
        "etaSeconds": int(report["etaSeconds"]) if report.get("etaSeconds") is not None else None,
        "rewardAccuracy": _rounded(report.get("rewardAccuracy")),
        "rewardMargin": _rounded(report.get("rewardMargin")),
    }
    progress["plateau"] = plateau_from_report(report.get("plateau"))
    progress["warnings"] = warnings_from_report(report.get("warnings")) or None
    progress = {k: v for k, v in progress.items() if v is not None}
    progress["lastUpdateTime"] = now
    return progress


def checkpoint_from_report(report: dict[str, Any]) -> dict[str, Any] | None:
    """status.checkpoint from the trainer's report of its newest checkpoint."""
    checkpoint = report.get("checkpoint")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("uri"), str):
        return None
    step = checkpoint.get("step")
    return {"uri": checkpoint["uri"][:2048], "step": step if isinstance(step, int) else None,
            "time": checkpoint.get("time")}


def progress_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether anything but the timestamp differs (status is written only on change)."""
    strip = lambda p: {k: v for k, v in (p or {}).items() if k != "lastUpdateTime"}  # noqa: E731
    return strip(old) != strip(new)


def _rounded(value: Any, digits: int = 4) -> float | None:
    return round(float(value), digits) if isinstance(value, int | float) else None


# --- EvalJob --------------------------------------------------------------------------------

def eval_status(*, generation: int | None, old: dict[str, Any], waiting: str | None,
                model_failed: str | None, run: o.RunObservation, thresholds: dict[str, Any],
                now: str, job_name: str, task: str | None,
                model_failed_reason: str = c.MODEL_JOB_FAILED) -> dict[str, Any]:
    """The EvalJob status: waiting for its FinetuneJob, running, or with results."""
    if model_failed:
        state, reason, message = o.FAILED, model_failed_reason, model_failed
    elif waiting:
        state, reason, message = o.ABSENT, c.WAITING_FOR_MODEL, waiting
    else:
        state, reason, message = run.state, run.reason, run.message
    succeeded, failed, running = state == o.SUCCEEDED, state == o.FAILED, state == o.RUNNING
    results = _eval_results(run.summary, thresholds) if succeeded else []
    benchmarks = _eval_benchmarks(run.summary.get("benchmarks"), thresholds) if succeeded else []
    new_conditions = [
        c.condition(c.VALIDATED, True, c.SPEC_VALID),
        c.condition(c.RUNNING, running, c.PODS_RUNNING if running else reason, message),
        c.condition(c.SUCCEEDED, succeeded,
                    c.COMPLETED if succeeded else reason if failed else c.IN_PROGRESS),
        c.condition(c.FAILED, failed, reason if failed else c.IN_PROGRESS,
                    message if failed else ""),
        _passed_condition(results + benchmarks, thresholds) if succeeded else
        c.condition(c.PASSED, False if failed else None, reason if failed else c.IN_PROGRESS),
    ]
    leakage = (run.summary or {}).get("leakage") if succeeded else None
    if isinstance(leakage, dict):
        new_conditions.append(_leakage_condition(leakage))
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": PHASE_OF_STATE[state],
        "conditions": c.merge_conditions(old.get("conditions"), new_conditions, now=now,
                                         generation=generation),
        "jobName": None if state == o.ABSENT or model_failed else job_name,
        "task": task,
        "failure": {"reason": reason, "message": message[:4096],
                    "hint": o.HINTS.get(reason, "") if model_failed else run.hint}
        if failed else None,
    }
    if not waiting:
        status["startTime"] = run.start_time
        status["completionTime"] = run.completion_time
    if succeeded:
        summary = run.summary
        status.update(samples=summary.get("samples"), results=results,
                      baselines=_eval_baselines(summary.get("baselines")) or None,
                      benchmarks=benchmarks or None,
                      calibration=_calibration(summary.get("calibration")),
                      errorAnalysis=_error_analysis(summary.get("errorAnalysis") or {}),
                      reportUri=summary.get("reportUri"))
    return {k: v for k, v in status.items() if v is not None or k == "failure"}


def _passed_condition(results: list[dict[str, Any]], thresholds: dict[str, Any]) -> dict:
    """Passed: every check of every threshold holds (and was computed); the message says
    which held and which did not."""
    if not thresholds:
        return c.condition(c.PASSED, True, c.NO_THRESHOLDS, "no thresholds set")
    by_name = {r["name"]: r for r in results}
    checks = [check for name, threshold in thresholds.items()
              for check in gate_checks(name, by_name.get(name), threshold)]
    held = [text for ok, text in checks if ok]
    unmet = [text for ok, text in checks if not ok]
    if unmet:
        message = "not met: " + "; ".join(unmet) + (f"; held: {'; '.join(held)}" if held else "")
        return c.condition(c.PASSED, False, c.THRESHOLDS_NOT_MET, message)
    return c.condition(c.PASSED, True, c.THRESHOLDS_MET, "all hold: " + "; ".join(held))


def _leakage_condition(leakage: dict[str, Any]) -> dict:
    exact, near = leakage.get("exact") or 0, leakage.get("nearDuplicates") or 0
    if exact or near:
        return c.condition(c.LEAKAGE_DETECTED, True, c.OVERLAP_FOUND,
                           f"{exact} evaluation examples are exact copies of training rows and "
                           f"{near} more are near-duplicates (character 5-gram Jaccard >= 0.8); "
                           "their scores overstate the model; the report lists them")
    return c.condition(c.LEAKAGE_DETECTED, False, c.NO_OVERLAP,
                       "no evaluation example copies or nearly copies a training row")


_INTERVAL_FIELDS = ("ciLow", "ciHigh", "deltaCiLow", "deltaCiHigh")


def _eval_results(summary: dict[str, Any], thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """status.results from the evaluator's summary: typed numbers, the strongest baseline,
    intervals, threshold verdicts (recomputed here with the same rule as the evaluator)."""
    results = []
    for item in summary.get("results") or []:
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not isinstance(value, int | float):
            continue
        entry: dict[str, Any] = {"name": name, "value": _rounded(value, 6)}
        baseline = item.get("baseline")
        if isinstance(baseline, int | float):
            entry["baseline"] = _rounded(baseline, 6)
            entry["delta"] = _rounded(value - baseline, 6)
        if isinstance(item.get("baselineName"), str):
            entry["baselineName"] = item["baselineName"][:64]
        for key in _INTERVAL_FIELDS:
            if isinstance(item.get(key), int | float):
                entry[key] = _rounded(item[key], 6)
        if name in thresholds:
            number = threshold_value(thresholds[name])
            if number is not None:
                entry["threshold"] = number
            entry["passed"] = all(ok for ok, _ in gate_checks(name, entry, thresholds[name]))
        results.append(entry)
    return results


def _eval_baselines(items: Any) -> list[dict[str, Any]]:
    """status.baselines: each baseline's metrics, numbers only."""
    out = []
    for item in (items or [])[:8]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        metrics = []
        for metric in (item.get("metrics") or [])[:16]:
            if not isinstance(metric, dict) or not isinstance(metric.get("value"), int | float):
                continue
            entry = {"name": str(metric.get("name"))[:64], "value": _rounded(metric["value"], 6)}
            for key in ("ciLow", "ciHigh"):
                if isinstance(metric.get(key), int | float):
                    entry[key] = _rounded(metric[key], 6)
            metrics.append(entry)
        out.append({"name": item["name"][:64], "metrics": metrics})
    return out


_BENCHMARK_NUMBERS = ("value", "ciLow", "ciHigh", "baseline", "delta", "deltaCiLow",
                      "deltaCiHigh")


def _eval_benchmarks(items: Any, thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """status.benchmarks: one typed row per benchmark task and metric, numbers only, with
    threshold verdicts recomputed like status.results'."""
    out = []
    for item in (items or [])[:64]:
        if (not isinstance(item, dict) or not isinstance(item.get("name"), str)
                or not isinstance(item.get("value"), int | float)):
            continue
        task, _, metric = item["name"].partition("/")
        entry: dict[str, Any] = {"name": item["name"][:200], "task": task[:128],
                                 "metric": metric[:64]}
        for key in _BENCHMARK_NUMBERS:
            if isinstance(item.get(key), int | float):
                entry[key] = _rounded(item[key], 6)
        for key in ("numFewshot", "samples"):
            if isinstance(item.get(key), int) and item[key] >= 0:
                entry[key] = item[key]
        if isinstance(item.get("baselineName"), str):
            entry["baselineName"] = item["baselineName"][:64]
        if entry["name"] in thresholds:
            threshold = thresholds[entry["name"]]
            if threshold_value(threshold) is not None:
                entry["threshold"] = threshold_value(threshold)
            entry["passed"] = all(ok for ok, _ in gate_checks(entry["name"], entry, threshold))
        out.append(entry)
    return out


def _calibration(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    out = {k: _rounded(item[k], 6) for k in ("ece", "brier") if isinstance(item.get(k), int | float)}
    return out or None


def _error_analysis(summary: dict[str, Any]) -> dict[str, Any]:
    confusion = [
        {"label": str(p.get("label"))[:253], "predicted": str(p.get("predicted"))[:253],
         "count": int(p.get("count", 0))}
        for p in (summary.get("confusion") or [])[:10] if isinstance(p, dict)
    ]
    worst = [
        {"label": str(p.get("label"))[:253], "f1": _rounded(p.get("f1"), 6)}
        for p in (summary.get("worstClasses") or [])[:10]
        if isinstance(p, dict) and isinstance(p.get("f1"), int | float)
    ]
    return {"confusion": confusion, "worstClasses": worst}
