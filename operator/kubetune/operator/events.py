"""Kubernetes Events for condition transitions, posted through kopf's event poster."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from . import conditions as c

log = logging.getLogger("kubetune.events")

# Conditions worth an Event when they become True, and whether that is a warning.
_ANNOUNCED = {c.VALIDATED: False, c.RESOURCES_FIT: False, c.RUNNING: False,
              c.SUCCEEDED: False, c.FAILED: True, c.SUSPENDED: False, c.PASSED: False,
              c.LEAKAGE_DETECTED: True, c.OVERFITTING: True, c.PLATEAU: False}


def post_condition_events(body: dict[str, Any], old: list[dict[str, Any]] | None,
                          new: list[dict[str, Any]]) -> None:
    for cond in c.transitions(old, new):
        message = cond.get("message") or f"{cond['type']} is {cond['status']}"
        warning = (cond["status"] == "True" and _ANNOUNCED.get(cond["type"], False)) or (
            cond["status"] == "False" and cond["type"] in (c.VALIDATED, c.RESOURCES_FIT, c.PASSED)
            and cond["reason"] not in (c.IN_PROGRESS,))
        if cond["status"] != "True" and not warning and cond["reason"] not in (c.RESUMED, c.RESTARTING):
            continue
        try:
            kopf.event(body, type="Warning" if warning else "Normal", reason=cond["reason"],
                       message=message)
        except Exception:  # Events are best effort; status is the source of truth.
            log.debug("could not post an event for %s", cond, exc_info=True)


def post_warning(body: dict[str, Any], reason: str, message: str) -> None:
    """A Warning Event about something no condition covers (best effort)."""
    post_event(body, reason, message, warning=True)


def post_event(body: dict[str, Any], reason: str, message: str, *, warning: bool) -> None:
    """An Event about something no condition covers (best effort)."""
    try:
        kopf.event(body, type="Warning" if warning else "Normal", reason=reason,
                   message=message[:1024])
    except Exception:
        log.debug("could not post an event %s: %s", reason, message, exc_info=True)
