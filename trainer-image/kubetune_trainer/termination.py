"""The final summary the operator reads from the container's termination message.

Kubernetes keeps at most 4 KiB of it, so the summary is shrunk (long message cut, data
summary dropped) until it fits.

    {"phase": "Succeeded" | "Failed",
     "reason": "Completed" | "InvalidDataset" | "ModelNotFound" | "InvalidConfig"
               | "Preempted" | "TrainerError",
     "message": "...",
     "step": 50, "totalSteps": 50,
     "result": {"adapterUri", "modelUri", "trainLoss", "evalLoss", "evalAccuracy", ...},
     "data": {"format", "rowsIn", "rowsOut", "dropped": {reason: n}, "tokens", ...}}
"""

from __future__ import annotations

import json
import logging
import os

log = logging.getLogger(__name__)

DEFAULT_PATH = "/dev/termination-log"
LIMIT_BYTES = 4096


def termination_path() -> str:
    return os.environ.get("KUBETUNE_TERMINATION_LOG") or DEFAULT_PATH


def render(summary: dict, limit: int = LIMIT_BYTES) -> str:
    """JSON of `summary`, shrunk to fit in `limit` bytes."""
    summary = {key: value for key, value in summary.items() if value is not None}
    text = json.dumps(summary, separators=(",", ":"))
    if len(text.encode()) < limit:
        return text
    summary = dict(summary)
    summary["message"] = str(summary.get("message", ""))[:1000]
    for drop in ("data", "result"):
        text = json.dumps(summary, separators=(",", ":"))
        if len(text.encode()) < limit:
            return text
        if drop == "result" and isinstance(summary.get("result"), dict):
            # Keep the URIs and losses the operator copies into status.result.
            keep = ("adapterUri", "modelUri", "trainLoss", "evalLoss", "evalAccuracy")
            summary["result"] = {k: v for k, v in summary["result"].items() if k in keep}
        else:
            summary.pop(drop, None)
    summary["message"] = summary["message"][:200]
    return json.dumps(summary, separators=(",", ":"))[: limit - 1]


def write(summary: dict, path: str | None = None) -> None:
    path = path or termination_path()
    text = render(summary)
    log.info("summary: %s", text)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:  # a local run without /dev/termination-log
        log.warning("cannot write the termination message to %s: %s", path, error)
