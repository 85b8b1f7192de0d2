"""Status only moves forward: one pure guard in front of every status write.

The operator computes a status from what it has seen, and what it has seen can be older
than what is stored: a watch event not yet delivered, a write whose reply was lost, a
progress report that raced the job's end, a restarted operator. Applied to (the stored or
freshest known status, the merge patch about to be written), the guard drops or mends what
would go backwards:

- a terminal phase (Succeeded, Failed) is final: a patch that would leave it is dropped
  whole. The one way out is a verdict given before anything ran, which its author may
  lift: a spec that failed validation (InvalidSpec, NotPermitted or RuntimeFieldLocked, then
  fixed), a job that does not fit
  (DoesNotFit, then annotated kubetune.io/skip-fit-check) or whose Job the API server
  refused (ChildRejected, then a changed spec);
- within one job, `progress.step` never decreases, except after a suspension (a user's
  spec.suspend), a Kueue preemption or a multi-node gang restart, from each of which the
  trainer resumes at its last checkpoint: then an older step is the truth (a Kueue
  preemption or gang restart shows as the Running condition turning False and True again);
- `attempts` and `gpuSeconds` never decrease;
- results are never lost: the keys of a FinetuneJob's `result` and the names in an
  EvalJob's `results` only grow.
"""

from __future__ import annotations

from typing import Any

from ..runtimes import RUNTIME_FIELD_LOCKED
from .conditions import CHILD_REJECTED, DOES_NOT_FIT, INVALID_SPEC, NOT_PERMITTED

TERMINAL = ("Succeeded", "Failed")
PRE_RUN_VERDICTS = (INVALID_SPEC, NOT_PERMITTED, DOES_NOT_FIT, CHILD_REJECTED, RUNTIME_FIELD_LOCKED)
_COUNTERS = ("attempts", "gpuSeconds")


def forward_only(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The part of the status merge patch `patch` that does not move `current` backwards."""
    if _leaves_terminal(current, patch):
        return {}
    patch = dict(patch)
    for key in _COUNTERS:
        if isinstance(patch.get(key), int | float) and isinstance(current.get(key), int | float):
            patch[key] = max(patch[key], current[key])
    if "progress" in patch and _step_goes_back(current, patch):
        del patch["progress"]
    if isinstance(current.get("result"), dict) and "result" in patch:
        patch["result"] = {**current["result"], **(patch["result"] or {})}
    if isinstance(current.get("results"), list) and "results" in patch:
        patch["results"] = _kept_results(current["results"], patch["results"] or [])
    return {k: v for k, v in patch.items() if current.get(k) != v or k not in current}


def _leaves_terminal(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    phase = current.get("phase")
    if phase not in TERMINAL or "phase" not in patch or patch["phase"] == phase:
        return False
    return (current.get("failure") or {}).get("reason") not in PRE_RUN_VERDICTS


def _step_goes_back(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    old, new = current.get("progress") or {}, patch.get("progress") or {}
    old_step, new_step = old.get("step"), new.get("step")
    if not isinstance(old_step, int):
        return False
    if not isinstance(new_step, int):
        return True  # a progress without a step would erase it
    return new_step < old_step and not _suspended_since(current, patch, old.get("lastUpdateTime"))


def _suspended_since(current: dict[str, Any], patch: dict[str, Any], since: str | None) -> bool:
    """Whether the job was suspended, preempted or gang-restarted (and so restarted from a
    checkpoint) after `since`."""
    conditions = patch.get("conditions") or current.get("conditions") or []
    running = next((c for c in conditions if c.get("type") == "Running"), None)
    if running and since and (running.get("lastTransitionTime") or "") > since:
        return True  # the pods stopped and started again since that progress report
    suspended = next((c for c in conditions if c.get("type") == "Suspended"), None)
    if suspended is None or suspended.get("reason") == "NotSuspended":
        return False
    changed = suspended.get("lastTransitionTime") or ""
    return since is None or changed >= since


def _kept_results(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {r.get("name") for r in new}
    return [*new, *(r for r in old if r.get("name") not in names)]


def regressions(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What moved backwards from one stored status to the next (empty: nothing). The same
    rules as `forward_only`, for checking what was stored (tests, the chaos soak)."""
    found = []
    if _leaves_terminal(old, new):
        found.append(f"phase {old.get('phase')} -> {new.get('phase')}")
    if "progress" in old and _step_goes_back(old, {**new, "progress": new.get("progress")}):
        found.append(f"progress.step {(old.get('progress') or {}).get('step')} -> "
                     f"{(new.get('progress') or {}).get('step')}")
    for key in _COUNTERS:
        if isinstance(old.get(key), int | float) and (new.get(key) or 0) < old[key]:
            found.append(f"{key} {old[key]} -> {new.get(key)}")
    lost = set(old.get("result") or {}) - set(new.get("result") or {})
    lost |= {r.get("name") for r in old.get("results") or []} - {
        r.get("name") for r in new.get("results") or []}
    if lost:
        found.append(f"results lost: {', '.join(sorted(map(str, lost)))}")
    return found
