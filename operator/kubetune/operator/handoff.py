"""output.serving.create: the KServe object of a FinetuneJob whose evaluation passed.

The object is the one the trainer wrote to serving.yaml (kubetune.serving builds both), owned
by the FinetuneJob (the garbage collector deletes it with the job), created once: a user who
deletes it keeps it deleted, as with the job's EvalJob. Nothing is created before the
EvalJob's Passed condition is True, and never for a job whose evaluation did not pass.

The operator may do this only where the chart granted it (serving.create); the requester's
own `create` on that kind was checked when the job was applied (kubetune.admission.rules).
"""

from __future__ import annotations

from typing import Any

from ..api import FinetuneJobSpec
from ..api.trainer_config import resolve_serving_kind
from ..serving import pinned, serving_manifest
from . import conditions as c
from . import labels
from . import ownership as own
from .builders import owner_reference
from .events import post_event
from .kube import ApiError
from .state import OperatorState

CREATED = "Created"
WAITING = "WaitingForEvaluation"
NOT_PASSED = "EvaluationNotPassed"
# Final: retrying cannot help until something outside the job changes (chart, CRDs, RBAC).
REFUSALS = {404: "KServeMissing", 403: "Forbidden", 422: "Invalid", 400: "Invalid"}


def wanted(spec: FinetuneJobSpec) -> bool:
    return bool(spec.output.serving and spec.output.serving.create)


def manifest(body: dict[str, Any], spec: FinetuneJobSpec,
             result: dict[str, Any]) -> dict[str, Any]:
    """The KServe object for this job's result, owned by the job. Raises ValueError when the
    result lacks what the kind serves (e.g. no whole model for an InferenceService)."""
    meta = body["metadata"]
    kind = resolve_serving_kind(spec)
    model_uri, adapter_uri = result.get("modelUri"), result.get("adapterUri")
    if kind == "LLMInferenceService" and adapter_uri:
        model_uri = None  # the adapter on the base model, as serving.yaml has it
    obj = serving_manifest(
        kind=kind, name=meta["name"], namespace=meta["namespace"], task=spec.model.task,
        model_uri=model_uri, adapter_uri=adapter_uri,
        base_uri=pinned(str(spec.model.uri), result.get("baseModelRevision")),
        gpus=spec.resources.gpus, gpu_resource_name=spec.resources.gpu_resource_name)
    obj["metadata"]["ownerReferences"] = [owner_reference("FinetuneJob", body)]
    return obj


def _status(obj: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    return {"kind": obj["kind"], "name": obj["metadata"]["name"], "reason": reason,
            "message": message[:1024]}


async def sync(state: OperatorState, body: dict[str, Any], spec: FinetuneJobSpec,
               old: dict[str, Any], result: dict[str, Any],
               eval_name: str | None) -> dict[str, Any] | None:
    """status.serving for a succeeded job that asks for output.serving.create (None: it does
    not ask), from its status.result. Creates the object once the job's own EvalJob has
    Passed."""
    if not wanted(spec):
        return None
    previous = old.get("serving") or {}
    if previous.get("reason") in (CREATED, NOT_PASSED, *REFUSALS.values(), "NameTaken"):
        return previous  # decided for this job: never created twice, never retried blindly
    try:
        obj = manifest(body, spec, result)
    except ValueError as error:
        kind = resolve_serving_kind(spec)
        return {"kind": kind, "name": body["metadata"]["name"], "reason": "Invalid",
                "message": f"training produced nothing a {kind} can serve: {error}"}
    if not state.settings.serving_create:
        return _status(obj, "Disabled", "output.serving.create is off on this cluster (chart "
                       "value serving.create); apply serving.yaml from the output folder instead")
    evaluation = state.evaljobs.get((body["metadata"]["namespace"], eval_name or ""))
    if evaluation is None or not own.belongs_to(evaluation, [body["metadata"]["uid"]]):
        return _status(obj, WAITING, "waiting for the evaluation's Passed condition")
    passed = c.find((evaluation.get("status") or {}).get("conditions"), c.PASSED) or {}
    if passed.get("status") == "False":
        return _status(obj, NOT_PASSED, f"not created: EvalJob {eval_name} did not pass: "
                       f"{passed.get('message', '')}")
    if passed.get("status") != "True":
        return _status(obj, WAITING, f"waiting for EvalJob {eval_name} to pass")
    try:
        created = await state.kube.create_serving(obj)
    except ApiError as error:
        if error.status not in REFUSALS:
            raise  # transient: the reconcile retries
        return _status(obj, REFUSALS[error.status],
                       f"the API server refused the {obj['kind']}: {error.message}")
    if not own.belongs_to(created, [body["metadata"]["uid"]]):
        return _status(obj, "NameTaken", f"a {obj['kind']} named {obj['metadata']['name']} "
                       "exists and was not created for this job; it was left alone")
    return _status(obj, CREATED, f"created {obj['kind']} {obj['metadata']['name']} "
                   f"(EvalJob {eval_name} passed)")


def waiting_owner(state: OperatorState, evaljob: dict[str, Any]) -> str | None:
    """The FinetuneJob that waits for this EvalJob's verdict to create its KServe object,
    or None (no verdict yet, no such owner, or its serving is decided)."""
    status = evaljob.get("status") or {}
    passed = c.find(status.get("conditions"), c.PASSED) or {}
    if passed.get("status") not in ("True", "False"):
        return None
    meta = evaljob["metadata"]
    owner = (meta.get("labels") or {}).get(labels.OWNER_LABEL["FinetuneJob"])
    waiting = state.current_status("FinetuneJob", (meta["namespace"], owner or ""))
    reason = (waiting.get("serving") or {}).get("reason")
    return owner if owner and reason == WAITING else None


def announce(body: dict[str, Any], old: dict[str, Any] | None,
             new: dict[str, Any] | None) -> None:
    """One Event when status.serving reaches a new verdict (waiting is not news)."""
    if not new or new.get("reason") == (old or {}).get("reason") or new["reason"] == WAITING:
        return
    reason = "Serving" + new["reason"] if new["reason"] != CREATED else "ServingCreated"
    post_event(body, reason, new.get("message", ""),
               warning=new["reason"] not in (CREATED, NOT_PASSED))
