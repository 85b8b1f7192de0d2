"""The Argo CD health check maps FinetuneJob and EvalJob status to Argo CD health."""

from __future__ import annotations

import re

import lupa.lua51  # Argo CD runs health checks in gopher-lua, a Lua 5.1
import pytest
import yaml

from .chart import CHART_DIR, REPO_ROOT

SCRIPT = (CHART_DIR / "files" / "argocd-health.lua").read_text()


def health(obj: dict) -> tuple[str, str]:
    lua = lupa.lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return result["status"], result["message"]


def job(kind: str = "FinetuneJob", status: dict | None = None, generation: int = 1) -> dict:
    obj = {"apiVersion": "kubetune.io/v1alpha1", "kind": kind,
           "metadata": {"name": "feedback-router", "namespace": "team-a", "generation": generation},
           "spec": {}}
    if status is not None:
        obj["status"] = status
    return obj


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message}


VALID = cond("Validated", "True", "SpecValid")


@pytest.mark.parametrize("kind", ["FinetuneJob", "EvalJob"])
@pytest.mark.parametrize(("status", "expected"), [
    (None, "Progressing"),
    ({}, "Progressing"),
    ({"phase": "Pending", "conditions": [VALID, cond("Running", "False", "Queued")]}, "Progressing"),
    ({"phase": "Running", "conditions": [VALID, cond("Running", "True", "PodsRunning")]}, "Progressing"),
    ({"phase": "Succeeded", "conditions": [VALID, cond("Succeeded", "True", "Completed")]}, "Healthy"),
    ({"phase": "Failed", "conditions": [VALID, cond("Failed", "True", "OOMKilled", "out of memory")]},
     "Degraded"),
    ({"phase": "Suspended", "conditions": [VALID, cond("Suspended", "True", "Suspended")]}, "Suspended"),
])
def test_phase_maps_to_health(kind, status, expected):
    assert health(job(kind, status))[0] == expected


def test_running_reports_progress():
    status = {"phase": "Running", "progress": {"percent": 40}, "conditions": [VALID]}
    assert health(job(status=status)) == ("Progressing", "Running: 40% done")


def test_failure_message_names_the_reason_and_hint():
    status = {"phase": "Failed", "conditions": [VALID, cond("Failed", "True", "OOMKilled", "old")],
              "failure": {"reason": "OOMKilled", "message": "the trainer ran out of GPU memory"}}
    assert health(job(status=status)) == ("Degraded", "OOMKilled: the trainer ran out of GPU memory")


def test_failure_without_details_uses_the_failed_condition():
    status = {"phase": "Failed", "conditions": [cond("Failed", "True", "DeadlineExceeded", "ran 86400s")]}
    assert health(job(status=status)) == ("Degraded", "DeadlineExceeded: ran 86400s")


def test_eval_job_below_its_thresholds_is_degraded_with_its_message():
    message = "f1 0.71 < threshold 0.85"
    status = {"phase": "Succeeded",
              "conditions": [VALID, cond("Succeeded", "True", "Completed"),
                             cond("Passed", "False", "ThresholdsNotMet", message)]}
    assert health(job("EvalJob", status)) == ("Degraded", message)


def test_eval_job_meeting_its_thresholds_is_healthy():
    status = {"phase": "Succeeded",
              "conditions": [VALID, cond("Succeeded", "True", "Completed"),
                             cond("Passed", "True", "ThresholdsMet", "f1 0.91 >= 0.85")]}
    assert health(job("EvalJob", status))[0] == "Healthy"


def test_invalid_spec_is_degraded_while_pending():
    status = {"phase": "Pending", "conditions": [
        cond("Validated", "False", "InvalidSpec", "spec.resources.gpus must be > 0 for qlora")]}
    assert health(job(status=status)) == ("Degraded", "spec.resources.gpus must be > 0 for qlora")


def test_a_change_not_yet_observed_is_progressing():
    status = {"phase": "Succeeded", "observedGeneration": 1, "conditions": [VALID]}
    assert health(job(status=status, generation=2))[0] == "Progressing"
    assert health(job(status=status, generation=1))[0] == "Healthy"


def test_docs_register_the_shipped_script_for_both_kinds():
    text = (REPO_ROOT / "docs" / "argocd-health.md").read_text()
    documents = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    configmaps = [doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == "ConfigMap"]
    assert len(configmaps) == 1
    data = configmaps[0]["data"]
    for kind in ("FinetuneJob", "EvalJob"):
        assert data[f"resource.customizations.health.kubetune.io_{kind}"] == SCRIPT
